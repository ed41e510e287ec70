"""Staff-only API: start, watch and cancel training runs."""

from __future__ import annotations

from django.db import models
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response

from digits_site.access import StaffOnly
from digits_site.errors import BadInput, ServiceUnavailable
from digits_site.schema import errors
from training import tasks
from training.config import RUN_FIELDS, ConfigError, TrainConfig, preset_fields
from training.models import RunFinished, RunNotFinished, TrainingRun

WRITABLE_FIELDS = ("preset", *RUN_FIELDS)


class StrictFloatField(serializers.FloatField):
    """A number, not ``true``/``false``: DRF's own takes a boolean as 1.0 or 0.0, so
    ``"drawings_share": false`` would quietly mean 0."""

    def to_internal_value(self, data):
        if isinstance(data, bool):
            self.fail("invalid")
        return super().to_internal_value(data)


class TrainingRunSerializer(serializers.ModelSerializer):
    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.FloatField: StrictFloatField,
    }

    progress = serializers.FloatField(read_only=True)
    progress_percent = serializers.IntegerField(read_only=True, allow_null=True)
    phase = serializers.ChoiceField(
        choices=TrainingRun.Phase.choices,
        allow_blank=True,
        read_only=True,
        help_text="what a running run does; empty before a worker takes it",
    )
    progress_text = serializers.CharField(read_only=True, help_text="what the run does, in words")
    model_version = serializers.SlugRelatedField(
        slug_field="version", read_only=True, allow_null=True
    )
    started_by = serializers.StringRelatedField(allow_null=True)

    class Meta:
        model = TrainingRun
        fields = [
            "id", *WRITABLE_FIELDS,
            "status", "cancel_requested", "progress", "progress_percent", "progress_text",
            "phase", "phase_detail", "phase_done", "phase_total", "epoch", "step",
            "steps_per_epoch",
            "loss", "accuracy", "val_accuracy", "eta_seconds", "device", "worker",
            "log_tail", "error", "gate", "model_version", "started_by",
            "created_at", "started_at", "finished_at",
        ]  # fmt: skip
        read_only_fields = [f for f in fields if f not in WRITABLE_FIELDS]

    def validate(self, attrs: dict) -> dict:
        """The preset's fields, then the ones sent, checked as one ``TrainConfig``."""
        try:
            fields = {**preset_fields(attrs.get("preset") or ""), **attrs}
            TrainConfig.from_run_fields(**{k: v for k, v in fields.items() if k != "preset"})
        except ConfigError as exc:
            raise serializers.ValidationError(exc.problems) from None
        return fields


class TrainingRunsView(StaffOnly):
    @extend_schema(summary="Start a training run", request=TrainingRunSerializer,
                   responses={202: TrainingRunSerializer,
                              **errors(400, 401, 403, 413, 415, 503)})  # fmt: skip
    def post(self, request):
        serializer = TrainingRunSerializer(data=request.data)
        if not serializer.is_valid():
            raise BadInput(serializer.errors)
        try:
            run = tasks.start_run(**serializer.validated_data, started_by=request.user)
        except tasks.BrokerUnavailable as exc:
            raise ServiceUnavailable(str(exc)) from None
        return Response(TrainingRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        summary="Recent training runs",
        responses={200: TrainingRunSerializer(many=True), **errors(401, 403)},
    )
    def get(self, request):
        TrainingRun.objects.fail_orphaned()
        return Response(TrainingRunSerializer(TrainingRun.objects.all()[:50], many=True).data)


class TrainingRunView(StaffOnly):
    @extend_schema(
        summary="A training run's status and progress",
        responses={200: TrainingRunSerializer, **errors(401, 403, 404)},
    )
    def get(self, request, pk: int):
        TrainingRun.objects.fail_orphaned()
        return Response(TrainingRunSerializer(get_object_or_404(TrainingRun, pk=pk)).data)


class CancelTrainingRunView(StaffOnly):
    @extend_schema(
        summary="Cancel a training run",
        request=None,
        responses={200: TrainingRunSerializer, **errors(400, 401, 403, 404)},
    )
    def post(self, request, pk: int):
        run = get_object_or_404(TrainingRun, pk=pk)
        try:
            run.cancel()
        except RunFinished as exc:
            raise BadInput(str(exc)) from None
        return Response(TrainingRunSerializer(run).data)


class RunAgainView(StaffOnly):
    @extend_schema(
        summary="Start a new run with a finished run's settings",
        description="For a run that failed (its worker died, the queue was down) or was "
        "cancelled: a new queued run with exactly the same configuration.",
        request=None,
        responses={202: TrainingRunSerializer, **errors(400, 401, 403, 404, 503)},
    )
    def post(self, request, pk: int):
        run = get_object_or_404(TrainingRun, pk=pk)
        try:
            again = tasks.start_run(**run.settings_again(), started_by=request.user)
        except RunNotFinished as exc:
            raise BadInput(str(exc)) from None
        except tasks.BrokerUnavailable as exc:
            raise ServiceUnavailable(str(exc)) from None
        return Response(TrainingRunSerializer(again).data, status=status.HTTP_202_ACCEPTED)
