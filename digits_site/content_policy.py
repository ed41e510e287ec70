"""The Content-Security-Policy header, built once instead of on every response.

django-csp's middleware rebuilds the header from the settings for every
response (the policy's parts turned into dictionaries, merged and joined,
twice: once for the enforced policy, once for the report-only one). That was
0.15 ms of a live prediction's 3 ms, measured in-process on the predict view.
The header depends only on the settings unless a response brings its own
(django-csp's decorators) or the request used its nonce; everything else gets
the same header, so it is built once per process and settings.
"""

from __future__ import annotations

import functools
import http.client

from csp.constants import HEADER, HEADER_REPORT_ONLY
from csp.middleware import CheckableLazyObject, CSPMiddleware
from csp.utils import build_policy
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

# What django-csp's decorators set on a response: the policy is then that response's own.
_PER_RESPONSE = tuple(
    f"_csp_{part}{suffix}"
    for part in ("config", "update", "replace", "exempt")
    for suffix in ("", "_ro")
)
_DEBUG_EXEMPT = (http.client.INTERNAL_SERVER_ERROR, http.client.NOT_FOUND)


@functools.cache
def _fixed_headers() -> tuple[tuple[str, str, tuple[str, ...]], ...]:
    """(header, value, excluded path prefixes) for each policy the settings define,
    built exactly as django-csp builds them for a response without a nonce."""
    built = []
    for header, name, report_only in (
        (HEADER, "CONTENT_SECURITY_POLICY", False),
        (HEADER_REPORT_ONLY, "CONTENT_SECURITY_POLICY_REPORT_ONLY", True),
    ):
        value = build_policy(report_only=report_only)
        if value:
            prefixes = (getattr(settings, name, None) or {}).get("EXCLUDE_URL_PREFIXES") or ()
            built.append((header, value, tuple(prefixes)))
    return tuple(built)


@receiver(setting_changed)
def _forget_headers(setting: str, **kwargs) -> None:
    if setting.startswith("CONTENT_SECURITY_POLICY"):
        _fixed_headers.cache_clear()


class ContentPolicy(CSPMiddleware):
    """django-csp's ``CSPMiddleware``, with the header of responses that bring no
    policy of their own and used no nonce built once (the pages that use the nonce,
    and responses from django-csp's decorators, are built per response as before)."""

    def process_response(self, request, response):
        if getattr(request, "_csp_nonce", None) is not None or any(
            hasattr(response, name) for name in _PER_RESPONSE
        ):
            return super().process_response(request, response)
        if settings.DEBUG and response.status_code in _DEBUG_EXEMPT:
            return response
        for header, value, prefixes in _fixed_headers():
            if header not in response and not request.path_info.startswith(prefixes):
                response[header] = value
        # As django-csp does: a nonce asked for after the header is written is an error.
        request.csp_nonce = CheckableLazyObject(self._csp_nonce_post_response)
        return response
