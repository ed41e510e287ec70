"""The JSON parser every API view uses (see REST_FRAMEWORK in settings).

DRF imports it while ``rest_framework.views`` is being imported, so it imports
nothing of ours: request-reading helpers live in ``digits_site.bodies``.
"""

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser


class BoundedJSONParser(JSONParser):
    """DRF's JSON parser, answering 400 instead of crashing on absurdly deep nesting
    (Python's decoder recurses once per level)."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON nested too deeply.") from None
