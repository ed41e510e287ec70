"""Reading request bodies, for every API view: a body becomes data, or a clear 4xx
saying what is wrong, never a 500.

Here too the parts every drawing request carries: its image (a data URL in JSON,
or a multipart file), bounded by ``DIGITS_MAX_IMAGE_BYTES`` before it is
decoded, and its optional ``strokes`` field, handed on as sent for the
classifier's strict check (``classifier.canvas.parse_strokes``).
"""

from __future__ import annotations

import base64
import binascii
import json
import re

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from rest_framework.exceptions import ParseError

from digits_site.errors import BadInput, PayloadTooLarge

_DATA_URL = re.compile(r"^data:image/[a-z0-9.+-]+;base64,", re.IGNORECASE)


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
    saying what is wrong with malformed ones; ``example`` shows the expected shape."""
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


def decode_data_url(value: str, max_bytes: int) -> bytes:
    """The bytes of a ``data:image/…;base64,…`` URL, refusing more than ``max_bytes``
    before decoding them."""
    match = _DATA_URL.match(value)
    if match is None:
        raise BadInput('"image" must be a data URL: "data:image/png;base64,...".')
    encoded = value[match.end() :]
    if len(encoded) > max_bytes * 4 // 3 + 4:
        raise PayloadTooLarge(f"The image is over the {max_bytes}-byte limit.")
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise BadInput('"image" is not valid base64.') from None


def image_from_data_url(value: object) -> bytes:
    """A drawing's bytes from its ``"image"`` data URL, within the image limit."""
    if not isinstance(value, str):
        raise BadInput('The field "image" must be a data URL string.')
    return decode_data_url(value, settings.DIGITS_MAX_IMAGE_BYTES)


def image_from_request(request) -> bytes:
    """The image bytes, from JSON ``{"image": "data:image/png;base64,..."}`` or a
    multipart ``image`` file."""
    data = request_data(request, '{"image": "data:image/png;base64,..."}')
    upload = request.FILES.get("image") if hasattr(request, "FILES") else None
    if upload is not None:
        limit = settings.DIGITS_MAX_IMAGE_BYTES
        if upload.size > limit:
            raise PayloadTooLarge(f"The image is {upload.size} bytes; the limit is {limit}.")
        return upload.read()
    if "image" not in data:
        raise BadInput('The field "image" is missing.')
    return image_from_data_url(data.get("image"))


PLACEMENT_FIELDS = ("left", "top", "width", "height")


def placement_from_request(request) -> tuple[int, int, int, int] | None:
    """The optional ``canvas`` field: where the image lies on the blank canvas it was
    cut from, as ``(left, top, width, height)`` whole pixels (the page sends only
    the part of its pad with ink), or None when absent. Its fit is checked once the
    image is decoded (``classifier.canvas.place``)."""
    value = request.data.get("canvas") if hasattr(request.data, "get") else None
    if value is None:
        return None
    if isinstance(value, str):  # a multipart form carries it as JSON text
        try:
            value = json.loads(value)
        except ValueError:
            value = None
    example = '{"left": 40, "top": 12, "width": 256, "height": 256}'
    if not isinstance(value, dict) or set(value) != set(PLACEMENT_FIELDS):
        raise BadInput(f'"canvas" must be an object like {example}.', code="invalid_canvas")
    numbers = [value[name] for name in PLACEMENT_FIELDS]
    if not all(isinstance(n, int) and not isinstance(n, bool) for n in numbers):
        raise BadInput(f'"canvas" takes whole pixels, like {example}.', code="invalid_canvas")
    left, top, width, height = numbers
    return left, top, width, height


def strokes_from_request(request) -> object | None:
    """The optional ``strokes`` field as sent (multipart forms carry it as JSON
    text), or None when it is absent."""
    value = request.data.get("strokes") if hasattr(request.data, "get") else None
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            raise BadInput('"strokes" is not valid JSON.', code="invalid_strokes") from None
    return value
