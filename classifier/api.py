"""The classifier's API: predictions for anyone, the model registry for staff.

Every refusal is a 4xx with ``{"error": "..."}`` saying what is wrong, never
a 500 (``digits_site.errors``).
"""

from __future__ import annotations

import base64
import io

import numpy as np
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiExample, extend_schema, inline_serializer
from PIL import Image
from rest_framework import serializers
from rest_framework.exceptions import APIException
from rest_framework.response import Response
from rest_framework.views import APIView

from classifier import canvas, preprocessing, serving
from classifier.models import ArtifactError, ModelVersion
from digits_site import bodies, limits
from digits_site.access import StaffOnly
from digits_site.errors import BadInput, Conflict, PayloadTooLarge
from digits_site.schema import CANVAS_PLACEMENT, IMAGE_DATA_URL, STROKES, errors

_PREDICTION = inline_serializer(
    "Prediction",
    {
        "digit": serializers.IntegerField(min_value=0, max_value=9),
        "probabilities": serializers.ListField(
            child=serializers.FloatField(), min_length=10, max_length=10
        ),
        "confidence": serializers.FloatField(),
        "sure": serializers.BooleanField(
            help_text="confidence is over the 'not sure' threshold (and the views agree)"
        ),
        "views": serializers.ListField(
            child=serializers.ChoiceField(choices=["image", "pen"]),
            help_text='what the answer read: ["image"], or ["image", "pen"] when strokes '
            "that draw the picture came with it and the model has a pen view",
        ),
        "model_version": serializers.IntegerField(),
        "input": serializers.CharField(
            required=False, help_text="the 28×28 input, as a PNG data URL"
        ),
    },
)


class PredictView(APIView):
    authentication_classes: list = []  # anonymous and stateless: no CSRF to check
    permission_classes: list = []
    throttle_classes = [limits.ScopedLimit]
    throttle_scope = "predict"

    @extend_schema(
        summary="Predict the digit in a drawing",
        request={
            "application/json": inline_serializer(
                "PredictRequest",
                {
                    "image": IMAGE_DATA_URL,
                    "strokes": STROKES,
                    "canvas": CANVAS_PLACEMENT,
                    "include_input": serializers.BooleanField(required=False, default=False),
                },
            ),
            "multipart/form-data": inline_serializer(
                "PredictUpload",
                {
                    "image": serializers.FileField(),
                    "strokes": serializers.CharField(required=False),
                    "canvas": serializers.CharField(required=False),
                },
            ),
        },
        responses={200: _PREDICTION, **errors(400, 413, 415, 429, 503)},
        examples=[
            OpenApiExample(
                "canvas", value={"image": "data:image/png;base64,iVBORw0K..."}, request_only=True
            )
        ],
    )
    def post(self, request):
        data = bodies.image_from_request(request)
        strokes = bodies.strokes_from_request(request)
        placement = bodies.placement_from_request(request)
        # Checked, so clients learn of bad ones; past the limits the page sends none.
        parsed = canvas.parse_strokes(strokes) if strokes is not None else None
        pixels = preprocessing.header_pixels(data)
        if pixels is not None and placement is not None:  # the canvas it is put back on
            width, height = (min(max(side, 1), preprocessing.MAX_SIDE) for side in placement[2:])
            pixels = max(pixels, width * height)  # (one past the limit is refused, not charged)
        limits.charge_for_image(request, self.throttle_scope, pixels)
        with limits.charged_by_cpu(request, self.throttle_scope):
            ink = preprocessing.decode_ink(data)
            if placement is not None:
                ink = canvas.place(ink, placement)
            model_input = preprocessing.ink_to_model_input(ink, legible=True)
            pen = parsed if parsed and canvas.strokes_agree(parsed, ink) else None
        payload = serving.classify(model_input[None], strokes=[pen]).answer()
        include = request.data.get("include_input") or request.query_params.get("include_input")
        if include in (True, "1", "true", "yes"):
            payload["input"] = input_as_data_url(model_input)
        return Response(payload)


def input_as_data_url(model_input: np.ndarray) -> str:
    """The 28×28 the model saw, as a tiny grey PNG the page can show."""
    out = io.BytesIO()
    Image.fromarray(np.round(model_input * 255).astype(np.uint8), mode="L").save(out, "PNG")
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode("ascii")


MAX_BATCH_ITEMS = 64
# The pixels one batch may declare in all: 64 canvases fit many times over; 64
# images of 1024×1024 (seconds of CPU) do not.
MAX_BATCH_PIXELS = 8_000_000


class PredictBatchView(APIView):
    """Several drawings in one request (API users, evaluation tools): each item obeys
    the single-prediction rules and fails alone, with its own error."""

    authentication_classes: list = []
    permission_classes: list = []
    throttle_classes = [limits.ScopedLimit]
    throttle_scope = "predict"

    @extend_schema(
        summary="Predict several drawings",
        request=inline_serializer(
            "PredictBatchRequest",
            {
                # Any item: one that is not a drawing's data URL gets its own error
                # in ``results`` while the others are answered.
                "images": serializers.ListField(
                    child=serializers.JSONField(help_text="data:image/png;base64,… per drawing"),
                    min_length=1,
                    max_length=MAX_BATCH_ITEMS,
                ),
                "strokes": serializers.ListField(
                    child=serializers.JSONField(allow_null=True),
                    required=False,
                    allow_null=True,
                    help_text="per image, its strokes as the page records them, or null "
                    "(null or absent: the pictures alone)",
                ),
            },
        ),
        responses={
            200: inline_serializer(
                "PredictBatchResponse",
                {
                    "model_version": serializers.IntegerField(),
                    "results": serializers.ListField(child=serializers.DictField()),
                },
            ),
            **errors(400, 413, 415, 429, 503),
        },
    )
    def post(self, request):
        data = bodies.request_data(request, '{"images": ["data:image/png;base64,...", ...]}')
        images = data.get("images")
        if not isinstance(images, list) or not images:
            raise BadInput('Send {"images": ["data:image/png;base64,...", ...]}.')
        if len(images) > MAX_BATCH_ITEMS:
            # A rule of the request document (its schema says maxItems), not a body
            # too large to read, which the size limit answers with 413.
            raise BadInput(f"{len(images)} images; at most {MAX_BATCH_ITEMS} per request.")
        pens = data.get("strokes")
        if pens is None:
            pens = [None] * len(images)
        elif not isinstance(pens, list) or len(pens) != len(images):
            raise BadInput('"strokes", when sent, is a list with one item (or null) per image.')
        # Every item is read from its header first, so the request is charged (each
        # item, each quarter megapixel) and capped before any pixel is decoded.
        items: list[bytes | None] = []
        results: list[dict | None] = []
        pixels = cost = 0
        for value in images:
            try:
                if not isinstance(value, str):
                    raise BadInput("must be a data URL string")
                data = bodies.image_from_data_url(value)
                size = preprocessing.declared_pixels(data)
            except (APIException, preprocessing.PreprocessingError) as exc:
                items.append(None)
                results.append(_item_error(exc))
                cost += 1
                continue
            items.append(data)
            results.append(None)
            pixels += size
            cost += limits.units(size)
        if pixels > MAX_BATCH_PIXELS:
            raise PayloadTooLarge(
                f"The images declare {pixels:,} pixels in all; at most {MAX_BATCH_PIXELS:,} "
                "per request. Send fewer or smaller images."
            )
        limits.charge(request, self.throttle_scope, cost - 1)  # the request paid one
        inputs, strokes = [], []
        for index, data in enumerate(items):
            if data is None:
                continue
            try:
                parsed = canvas.parse_strokes(pens[index]) if pens[index] is not None else None
                with limits.charged_by_cpu(request, self.throttle_scope):
                    ink = preprocessing.decode_ink(data)
                    inputs.append((index, preprocessing.ink_to_model_input(ink, legible=True)))
                    agree = parsed is not None and canvas.strokes_agree(parsed, ink)
                strokes.append(parsed if agree else None)
            except (preprocessing.PreprocessingError, canvas.InvalidStrokes) as exc:
                results[index] = _item_error(exc)
        verdicts = serving.classify(
            np.stack([x for _, x in inputs]) if inputs else np.zeros((0, 28, 28), np.float32),
            strokes=strokes,
        )
        for position, (index, _) in enumerate(inputs):
            results[index] = verdicts.answer(position)
        return Response({"model_version": verdicts.model_version, "results": results})


def _item_error(exc: Exception) -> dict:
    message = exc.detail if isinstance(exc, APIException) else str(exc)
    return {"error": str(message), "code": getattr(exc, "code", None) or "bad_input"}


class ModelVersionSerializer(serializers.ModelSerializer):
    # The run that trained it (``training.TrainingRun.model_version``'s reverse side).
    training_run = serializers.PrimaryKeyRelatedField(read_only=True, allow_null=True)
    accuracies = serializers.SerializerMethodField()

    class Meta:
        model = ModelVersion
        fields = [
            "version", "architecture", "status", "accuracies", "rejection_reasons", "gate", "note",
            "serving_error", "serving_error_at", "training_run", "created_at",
        ]  # fmt: skip

    def get_accuracies(self, obj: ModelVersion) -> dict[str, float]:
        return {name: r["accuracy"] for name, r in (obj.metrics or {}).get("tests", {}).items()}


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
