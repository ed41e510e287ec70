"""The JSON parser every API view uses (see REST_FRAMEWORK in settings).

DRF imports it while ``rest_framework.views`` is being imported, so it imports
nothing of ours: request-reading helpers live in ``digits_site.bodies``.
"""

import io

import numpy as np
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

# Arrays and objects a body may hold: a drawing's strokes are at most 64 strokes of
# 8,000 points in all (8,065 arrays); a body of a million empty arrays (3 MB, a
# second of a worker's CPU to parse) is refused from a count of its brackets.
MAX_CONTAINERS = 10_000
MAX_DEPTH = 100  # strokes are 3 deep


def _depth(body: bytes) -> int:
    """How deep the brackets nest (strings not told apart: it only words a refusal)."""
    brackets = np.frombuffer(body.translate(None, _NOT_BRACKETS), np.uint8)
    if not len(brackets):
        return 0
    steps = np.where((brackets == ord("[")) | (brackets == ord("{")), 1, -1).astype(np.int32)
    return int(np.cumsum(steps).max())


_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


class BoundedJSONParser(JSONParser):
    """DRF's JSON parser, answering 400 instead of working for seconds on a body of
    countless arrays, or crashing on absurdly deep nesting (Python's decoder
    recurses once per level)."""

    def parse(self, stream, media_type=None, parser_context=None):
        body = stream.read() if stream is not None else b""
        # Brackets inside strings count too: an over-count, never an under-count.
        if body.count(b"[") + body.count(b"{") > MAX_CONTAINERS:
            if _depth(body[:65536]) > MAX_DEPTH:  # the start tells which, in microseconds
                raise ParseError("JSON nested too deeply.")
            raise ParseError(f"The JSON holds more than {MAX_CONTAINERS:,} arrays and objects.")
        try:
            return super().parse(io.BytesIO(body), media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON nested too deeply.") from None
