"""Reading request bodies, for every API view: a body becomes data, or a clear 4xx
saying what is wrong, never a 500."""

from __future__ import annotations

import base64
import binascii
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
