"""Staff-only API: start, watch and cancel training runs; list, promote and roll back models."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.authentication import SessionAuthentication, TokenAuthentication
from rest_framework.permissions import IsAdminUser
from rest_framework.response import Response
from rest_framework.views import APIView

from classifier.api import BadInput, Conflict, ServiceUnavailable
from classifier.models import ArtifactError, ModelVersion
from digits_site.schema import errors
from training import presets, runs
from training.models import TrainingRun


class StaffOnly(APIView):
    # Token first: an unauthenticated request then gets 401 with
    # ``WWW-Authenticate: Token`` (saying how to authenticate), not a bare 403.
    authentication_classes = [TokenAuthentication, SessionAuthentication]
    permission_classes = [IsAdminUser]


class TrainingRunSerializer(serializers.ModelSerializer):
    progress = serializers.FloatField(read_only=True)
    model_version = serializers.SlugRelatedField(
        slug_field="version", read_only=True, allow_null=True
    )
    started_by = serializers.StringRelatedField(allow_null=True)

    class Meta:
        model = TrainingRun
        fields = [
            "id", "preset", "architecture", "epochs", "batch_size", "learning_rate", "augment",
            "use_mnist", "use_pendigits", "use_drawings", "kaggle_csv", "limit", "seed",
            "status", "cancel_requested", "progress", "epoch", "step", "steps_per_epoch",
            "loss", "accuracy", "val_accuracy", "eta_seconds", "device", "worker",
            "log_tail", "error", "gate", "model_version", "started_by",
            "created_at", "started_at", "finished_at",
        ]  # fmt: skip
        read_only_fields = [
            f for f in fields
            if f not in {"architecture", "epochs", "batch_size", "learning_rate", "augment",
                         "use_mnist", "use_pendigits", "use_drawings", "kaggle_csv", "limit",
                         "seed", "preset"}
        ]  # fmt: skip

    def validate_preset(self, value: str) -> str:
        if value and value not in presets.PRESETS:
            raise serializers.ValidationError(f"Choose one of {', '.join(presets.PRESETS)}.")
        return value

    def validate_epochs(self, value: int) -> int:
        if not 1 <= value <= 200:
            raise serializers.ValidationError("Between 1 and 200 epochs.")
        return value

    def validate_batch_size(self, value: int) -> int:
        if not 8 <= value <= 4096:
            raise serializers.ValidationError("Between 8 and 4096.")
        return value

    def validate_learning_rate(self, value: float) -> float:
        if not 0 < value <= 1:
            raise serializers.ValidationError("Between 0 and 1.")
        return value

    def validate(self, attrs: dict) -> dict:
        config = {**presets.config_for(attrs.get("preset") or ""), **attrs}
        if not (config.get("use_mnist", True) or config.get("use_pendigits", True)
                or config.get("use_drawings", True) or config.get("kaggle_csv")):  # fmt: skip
            raise serializers.ValidationError("Choose at least one data source.")
        return config


class ModelVersionSerializer(serializers.ModelSerializer):
    training_run = serializers.PrimaryKeyRelatedField(read_only=True, allow_null=True)
    accuracies = serializers.SerializerMethodField()

    class Meta:
        model = ModelVersion
        fields = [
            "version", "architecture", "status", "accuracies", "rejection_reasons", "note",
            "serving_error", "serving_error_at", "training_run", "created_at",
        ]  # fmt: skip

    def get_accuracies(self, obj: ModelVersion) -> dict[str, float]:
        return {name: r["accuracy"] for name, r in (obj.metrics or {}).get("tests", {}).items()}


class TrainingRunsView(StaffOnly):
    @extend_schema(summary="Start a training run", request=TrainingRunSerializer,
                   responses={202: TrainingRunSerializer,
                              **errors(400, 401, 403, 413, 415, 503)})  # fmt: skip
    def post(self, request):
        serializer = TrainingRunSerializer(data=request.data)
        if not serializer.is_valid():
            raise BadInput(serializer.errors)
        try:
            run = runs.start_run(**serializer.validated_data, started_by=request.user)
        except runs.BrokerUnavailable as exc:
            raise ServiceUnavailable(str(exc)) from None
        return Response(TrainingRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        summary="Recent training runs",
        responses={200: TrainingRunSerializer(many=True), **errors(401, 403)},
    )
    def get(self, request):
        runs.fail_orphaned_runs()
        return Response(TrainingRunSerializer(TrainingRun.objects.all()[:50], many=True).data)


class TrainingRunView(StaffOnly):
    @extend_schema(
        summary="A training run's status and progress",
        responses={200: TrainingRunSerializer, **errors(401, 403, 404)},
    )
    def get(self, request, pk: int):
        runs.fail_orphaned_runs()
        return Response(TrainingRunSerializer(get_object_or_404(TrainingRun, pk=pk)).data)


class CancelTrainingRunView(StaffOnly):
    @extend_schema(
        summary="Cancel a training run",
        request=None,
        responses={200: TrainingRunSerializer, **errors(400, 401, 403, 404)},
    )
    def post(self, request, pk: int):
        run = get_object_or_404(TrainingRun, pk=pk)
        cancel(run)
        run.refresh_from_db()
        return Response(TrainingRunSerializer(run).data)


def cancel(run: TrainingRun) -> None:
    """A queued run is cancelled at once; a running one stops at its next batch."""
    if run.is_finished:
        raise BadInput(f"Run {run.pk} has already finished ({run.status}).")
    TrainingRun.objects.filter(pk=run.pk).update(cancel_requested=True)
    runs.finish_if_queued(run.pk)


class ModelVersionsView(StaffOnly):
    @extend_schema(
        summary="Model versions",
        responses={200: ModelVersionSerializer(many=True), **errors(401, 403)},
    )
    def get(self, request):
        return Response(ModelVersionSerializer(ModelVersion.objects.all(), many=True).data)


class PromoteView(StaffOnly):
    @extend_schema(
        summary="Promote a model version (or roll back to an earlier one)",
        request={
            "application/json": {
                "type": "object",
                "properties": {"reason": {"type": "string", "minLength": 1, "maxLength": 500}},
                "required": ["reason"],
            }
        },
        responses={200: ModelVersionSerializer, **errors(400, 401, 403, 404, 409, 415)},
    )
    def post(self, request, version: int):
        model_version = get_object_or_404(ModelVersion, version=version)
        reason = request.data.get("reason") if hasattr(request.data, "get") else None
        if not isinstance(reason, str) or not reason.strip():
            raise BadInput('Say why: {"reason": "..."} is required.')
        try:
            model_version.promote(by=request.user, reason=reason.strip()[:500])
        except ArtifactError as exc:
            raise Conflict(str(exc)) from None
        return Response(ModelVersionSerializer(model_version).data)
