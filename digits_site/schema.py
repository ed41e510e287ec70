"""Pieces of the OpenAPI schema shared by every API app, so each operation documents
the same error body and every status code it can answer."""

from __future__ import annotations

from drf_spectacular.utils import inline_serializer
from rest_framework import serializers

ERROR = inline_serializer(
    "Error",
    {
        "error": serializers.CharField(help_text="what is wrong, in words"),
        "code": serializers.CharField(help_text="a stable machine-readable reason"),
    },
)

# Canvas PNGs travel as data URLs; the schema says so, the server checks the rest.
IMAGE_DATA_URL = serializers.RegexField(
    r"^data:image/[A-Za-z0-9.+-]+;base64,[A-Za-z0-9+/]*={0,2}$",
    help_text="data:image/png;base64,… (the canvas PNG)",
)


STROKES = serializers.ListField(
    child=serializers.ListField(
        child=serializers.ListField(child=serializers.FloatField(), min_length=3, max_length=3),
        min_length=1,
        max_length=2000,
    ),
    required=False,
    min_length=1,
    max_length=64,
    help_text="the pen as drawn: strokes of [x, y, t] points (canvas pixels, "
    "milliseconds since the first point); at most 64 strokes, 2,000 points each, "
    "8,000 in all",
)


CANVAS_PLACEMENT = inline_serializer(
    "CanvasPlacement",
    {name: serializers.IntegerField(min_value=0) for name in ("left", "top", "width", "height")},
    required=False,
    help_text="where the image lies on the blank canvas it was cut from (the page sends "
    "only the part of its pad with ink): the answer is the whole canvas's",
)


def errors(*codes: int) -> dict[int, object]:
    """``{code: Error}`` for an operation's ``responses``."""
    return dict.fromkeys(codes, ERROR)
