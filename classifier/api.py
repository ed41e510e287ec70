"""The prediction API: a drawing in, the model's answer out.

Every refusal is a 4xx with ``{"error": "..."}`` saying what is wrong, never
a 500; :func:`json_exception_handler` makes DRF's own errors look the same.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import io
import logging
import re

import numpy as np
from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import OperationalError
from drf_spectacular.utils import OpenApiExample, extend_schema, inline_serializer
from PIL import Image
from rest_framework import serializers, status
from rest_framework.exceptions import APIException, ParseError
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView, exception_handler

from classifier import preprocessing, runtime
from digits_site.schema import IMAGE_DATA_URL, errors

logger = logging.getLogger(__name__)

_DATA_URL = re.compile(r"^data:image/[a-z0-9.+-]+;base64,", re.IGNORECASE)


class BadInput(APIException):
    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "bad_input"


class PayloadTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "too_large"


class ServiceUnavailable(APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_code = "unavailable"


class DatabaseBusy(ServiceUnavailable):
    """The database could not take the write in time (SQLite under concurrent writers,
    or a database server that is down): nothing was saved, and the client may retry."""

    default_detail = "The database is busy right now; nothing was saved. Try again in a moment."
    default_code = "database_busy"
    wait = 2  # seconds, sent as Retry-After


class Conflict(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"


def json_exception_handler(exc, context):
    """DRF's handler, reshaped to ``{"error": message}`` (plus ``code``)."""
    if isinstance(exc, RequestDataTooBig):
        exc = PayloadTooLarge("The request body is larger than the limit.")
    if isinstance(exc, OperationalError):
        logger.warning("Database unavailable: %s", exc)
        exc = DatabaseBusy()
    response = exception_handler(exc, context)
    if response is None:
        return None
    detail = response.data
    if isinstance(detail, dict) and "detail" in detail:
        message = str(detail["detail"])
    elif isinstance(detail, dict):
        message = "; ".join(
            f"{field}: {' '.join(map(str, errors)) if isinstance(errors, list) else errors}"
            for field, errors in detail.items()
        )
    elif isinstance(detail, list):
        message = " ".join(map(str, detail))
    else:
        message = str(detail)
    code = getattr(exc, "default_code", "error")
    if hasattr(exc, "get_codes"):
        codes = exc.get_codes()
        code = codes if isinstance(codes, str) else code
    response.data = {"error": message, "code": code}
    return response


def refuse_oversized(request) -> None:
    """Refuse by the declared length, before the body is read at all."""
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise BadInput("The Content-Length header is not a number.") from None
    if length > settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
        raise PayloadTooLarge(
            f"The request body is {length} bytes; the limit is "
            f"{settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes."
        )


def request_data(request, example: str):
    """The parsed body (a JSON object or form), refusing oversized bodies unread and
    saying what is wrong with malformed ones."""
    refuse_oversized(request)
    try:
        data = request.data
    except RequestDataTooBig:
        raise PayloadTooLarge("The request body is larger than the limit.") from None
    except ParseError as exc:
        raise BadInput(f"The body is not valid JSON: {exc.detail}") from None
    if not hasattr(data, "get"):
        raise BadInput(f"Send a JSON object like {example}.")
    return data


@contextlib.contextmanager
def image_errors():
    """Problems with the image itself become 413 (too large) or 400 with its code."""
    try:
        yield
    except preprocessing.ImageTooLarge as exc:
        raise PayloadTooLarge(str(exc)) from None
    except preprocessing.PreprocessingError as exc:
        raise BadInput(str(exc), code=exc.code) from None


def image_bytes_from_request(request) -> bytes:
    """The image bytes, from JSON ``{"image": "data:image/png;base64,..."}`` or a
    multipart ``image`` file."""
    data = request_data(request, '{"image": "data:image/png;base64,..."}')
    upload = request.FILES.get("image") if hasattr(request, "FILES") else None
    if upload is not None:
        if upload.size > preprocessing.MAX_IMAGE_BYTES:
            raise PayloadTooLarge(
                f"The image is {upload.size} bytes; the limit is {preprocessing.MAX_IMAGE_BYTES}."
            )
        return upload.read()
    if "image" not in data:
        raise BadInput('The field "image" is missing.')
    value = data.get("image")
    if not isinstance(value, str):
        raise BadInput('The field "image" must be a data URL string.')
    return decode_data_url(value)


def decode_data_url(value: str) -> bytes:
    match = _DATA_URL.match(value)
    if match is None:
        raise BadInput('"image" must be a data URL: "data:image/png;base64,...".')
    encoded = value[match.end() :]
    if len(encoded) > preprocessing.MAX_IMAGE_BYTES * 4 // 3 + 4:
        raise PayloadTooLarge(f"The image is over the {preprocessing.MAX_IMAGE_BYTES}-byte limit.")
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise BadInput('"image" is not valid base64.') from None


def model_input_from_request(request) -> np.ndarray:
    with image_errors():
        return preprocessing.to_model_input(image_bytes_from_request(request))


def input_as_data_url(model_input: np.ndarray) -> str:
    """The 28×28 the model saw, as a tiny grey PNG the page can show."""
    out = io.BytesIO()
    Image.fromarray(np.round(model_input * 255).astype(np.uint8), mode="L").save(out, "PNG")
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode("ascii")


def prediction_payload(probabilities: np.ndarray, version: int) -> dict:
    digit = int(np.argmax(probabilities))
    confidence = float(probabilities[digit])
    return {
        "digit": digit,
        "probabilities": [round(float(p), 6) for p in probabilities],
        "confidence": round(confidence, 6),
        "sure": confidence >= settings.DIGITS_CONFIDENCE_THRESHOLD,
        "model_version": version,
    }


def loaded_model() -> runtime.LoadedModel:
    try:
        return runtime.active_model()
    except runtime.NoActiveModel as exc:
        raise ServiceUnavailable(str(exc)) from None


_PREDICTION = inline_serializer(
    "Prediction",
    {
        "digit": serializers.IntegerField(min_value=0, max_value=9),
        "probabilities": serializers.ListField(
            child=serializers.FloatField(), min_length=10, max_length=10
        ),
        "confidence": serializers.FloatField(),
        "sure": serializers.BooleanField(help_text="confidence is over the 'not sure' threshold"),
        "model_version": serializers.IntegerField(),
        "input": serializers.CharField(
            required=False, help_text="the 28×28 input, as a PNG data URL"
        ),
    },
)


class PredictView(APIView):
    authentication_classes: list = []  # anonymous and stateless: no CSRF to check
    permission_classes: list = []
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "predict"

    @extend_schema(
        summary="Predict the digit in a drawing",
        request={
            "application/json": inline_serializer(
                "PredictRequest",
                {
                    "image": IMAGE_DATA_URL,
                    "include_input": serializers.BooleanField(required=False, default=False),
                },
            ),
            "multipart/form-data": inline_serializer(
                "PredictUpload", {"image": serializers.FileField()}
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
        model_input = model_input_from_request(request)
        model = loaded_model()
        probabilities = model.predictor.predict(model_input[None])[0]
        payload = prediction_payload(probabilities, model.version)
        include = request.data.get("include_input") or request.query_params.get("include_input")
        if include in (True, "1", "true", "yes"):
            payload["input"] = input_as_data_url(model_input)
        return Response(payload)


MAX_BATCH_ITEMS = 64


class PredictBatchView(APIView):
    """Several drawings in one request (API users, evaluation tools): each item obeys
    the single-prediction rules and fails alone, with its own error."""

    authentication_classes: list = []
    permission_classes: list = []
    throttle_classes = [ScopedRateThrottle]
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
                )
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
        data = request_data(request, '{"images": ["data:image/png;base64,...", ...]}')
        images = data.get("images")
        if not isinstance(images, list) or not images:
            raise BadInput('Send {"images": ["data:image/png;base64,...", ...]}.')
        if len(images) > MAX_BATCH_ITEMS:
            # A rule of the request document (its schema says maxItems), not a body
            # too large to read, which the size limit answers with 413.
            raise BadInput(f"{len(images)} images; at most {MAX_BATCH_ITEMS} per request.")
        inputs, results = [], []
        for index, value in enumerate(images):
            try:
                if not isinstance(value, str):
                    raise BadInput("must be a data URL string")
                inputs.append((index, preprocessing.to_model_input(decode_data_url(value))))
                results.append(None)
            except (APIException, preprocessing.PreprocessingError) as exc:
                message = exc.detail if isinstance(exc, APIException) else str(exc)
                code = getattr(exc, "code", None) or "bad_input"
                results.append({"error": str(message), "code": code})
        model = loaded_model()
        if inputs:
            answers = model.predictor.predict(np.stack([x for _, x in inputs]))
            for (index, _), probabilities in zip(inputs, answers, strict=True):
                results[index] = prediction_payload(probabilities, model.version)
        return Response({"model_version": model.version, "results": results})
