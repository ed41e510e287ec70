"""What the model says about drawings: the one path from a request's image to an
answer, used by the predict and contribute APIs, the training gate and ``evaluate``.

Preprocessing happens once per image (``classifier.preprocessing``); the model
is the process' active one (``classifier.runtime``) unless a caller passes its
own predictor (a candidate's artifact, a file to evaluate).
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from django.conf import settings
from PIL import Image

from classifier import canvas, preprocessing, runtime
from classifier.predictor import Predictor
from digits_site import limits
from digits_site.bodies import decode_data_url, request_data
from digits_site.errors import BadInput, PayloadTooLarge, ServiceUnavailable

# Larger inputs go through the interpreter in chunks of this many images.
CHUNK = 1000
# A request is charged one unit against its rate limit per image, and one more per
# started quarter megapixel beyond the first (the page's canvas is one unit; a
# 1024×1024 upload, which costs about five times the work, is five).
PIXELS_PER_UNIT = 250_000


@dataclass(frozen=True)
class Verdicts:
    """The model's probabilities for a batch of images, and which version said so
    (``None`` for a predictor that is not a registered version)."""

    probabilities: np.ndarray  # (n, 10) float32, calibrated
    model_version: int | None
    model_version_id: int | None = None  # the ModelVersion row's id
    threshold: float | None = None  # the version's "not sure" threshold

    @property
    def digits(self) -> np.ndarray:
        return self.probabilities.argmax(axis=1)

    def answer(self, index: int = 0) -> dict:
        """One image's answer, as the API sends it."""
        probabilities = self.probabilities[index]
        digit = int(np.argmax(probabilities))
        confidence = float(probabilities[digit])
        threshold = (
            settings.DIGITS_CONFIDENCE_THRESHOLD if self.threshold is None else self.threshold
        )
        return {
            "digit": digit,
            "probabilities": [round(float(p), 6) for p in probabilities],
            "confidence": round(confidence, 6),
            "sure": confidence >= threshold,
            "model_version": self.model_version,
        }


def classify(images: np.ndarray, predictor: Predictor | None = None) -> Verdicts:
    """Probabilities for ``images`` ((n, 28, 28) floats in [0, 1], model inputs) from
    ``predictor``, or from the active model when none is given.

    Raises :class:`runtime.NoActiveModel` when there is no model to ask.
    """
    images = np.asarray(images, dtype=np.float32)
    version = version_id = threshold = None
    if predictor is None:
        loaded = runtime.active_model()
        predictor, version, version_id = loaded.predictor, loaded.version, loaded.version_id
        threshold = loaded.threshold
    if not len(images):
        probabilities = np.zeros((0, 10), np.float32)
    elif len(images) <= CHUNK:
        probabilities = predictor.predict(images)
    else:
        probabilities = np.concatenate(
            [predictor.predict(images[i : i + CHUNK]) for i in range(0, len(images), CHUNK)]
        )
    return Verdicts(probabilities, version, version_id, threshold)


def classify_for_request(images: np.ndarray) -> Verdicts:
    """:func:`classify` with the active model, answering 503 when there is none."""
    try:
        return classify(images)
    except runtime.NoActiveModel as exc:
        raise ServiceUnavailable(str(exc)) from None


@contextlib.contextmanager
def image_errors() -> Iterator[None]:
    """Problems with the image itself become 413 (too large) or 400 with its code."""
    try:
        yield
    except preprocessing.ImageTooLarge as exc:
        raise PayloadTooLarge(str(exc)) from None
    except preprocessing.PreprocessingError as exc:
        raise BadInput(str(exc), code=exc.code) from None


def image_from_data_url(value: object) -> bytes:
    if not isinstance(value, str):
        raise BadInput('The field "image" must be a data URL string.')
    return decode_data_url(value, preprocessing.MAX_IMAGE_BYTES)


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
    return image_from_data_url(data.get("image"))


def strokes_from_request(request) -> list[np.ndarray] | None:
    """The optional ``strokes`` field (JSON; a JSON string in a multipart form),
    checked strictly: a 400 saying what is wrong, or None when it is absent."""
    value = request.data.get("strokes") if hasattr(request.data, "get") else None
    if value is None:
        return None
    if isinstance(value, str):  # multipart forms carry it as JSON text
        try:
            value = json.loads(value)
        except ValueError:
            raise BadInput('"strokes" is not valid JSON.', code="invalid_strokes") from None
    try:
        return canvas.parse_strokes(value)
    except canvas.InvalidStrokes as exc:
        raise BadInput(str(exc), code=exc.code) from None


def units(pixels: int) -> int:
    """What an image of ``pixels`` costs against the rate limits."""
    return max(1, -(-pixels // PIXELS_PER_UNIT))


def charge_for_image(request, scope: str, data: bytes) -> None:
    """Charge a large image's extra units (the request itself paid one) before any
    pixel is decoded; a 429 if they do not fit. An unreadable header costs nothing
    more and is refused by preprocessing with its own message."""
    try:
        pixels = preprocessing.declared_pixels(data)
    except preprocessing.PreprocessingError:
        return
    limits.charge(request, scope, units(pixels) - 1)


def model_input(data: bytes) -> np.ndarray:
    """The 28×28 model input for an uploaded image, or a 400/413 saying what is wrong."""
    with image_errors():
        return preprocessing.to_model_input(data)


def input_as_data_url(model_input: np.ndarray) -> str:
    """The 28×28 the model saw, as a tiny grey PNG the page can show."""
    out = io.BytesIO()
    Image.fromarray(np.round(model_input * 255).astype(np.uint8), mode="L").save(out, "PNG")
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode("ascii")
