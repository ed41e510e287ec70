"""Failed sign-ins and wrong API tokens, limited per address.

django-axes locks a username at one address after a few failures, which stops
guessing one account's password, not one address trying a few passwords on
each of many accounts (160 in a minute over 40 usernames), nor guessing API
tokens (1,000 wrong ones in 4 s, each a plain 401). Every failure of either
kind now counts against the address (``DIGITS_AUTH_FAILURE_RATE``, the shared
Redis counters of :mod:`digits_site.limits`); once it is used up, further
attempts from that address are refused before any password or token is
checked, with a 429 that says when to try again, until the window slides on.
"""

from __future__ import annotations

import math

from django.contrib.auth.signals import user_login_failed
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse, JsonResponse
from rest_framework import authentication, exceptions

from digits_site.clients import address_key
from digits_site.limits import counters, rate_for

SCOPE = "auth_failures"


def _key(request) -> str:
    return f"{SCOPE}:{address_key(request)}"


def refused_for(request) -> int | None:
    """Seconds the request's address must wait before it may try again, or None."""
    rate = rate_for(SCOPE)
    if rate is None or request is None:
        return None
    allowed, wait = counters.take(_key(request), 1, rate, dry=True)
    return None if allowed else max(1, math.ceil(wait))


def count_failure(request) -> None:
    rate = rate_for(SCOPE)
    if rate is not None and request is not None:
        counters.take(_key(request), 1, rate)


def _on_login_failed(sender, credentials, request=None, **kwargs) -> None:
    if request is not None and not getattr(request, "digits_auth_refused", None):
        count_failure(request)


user_login_failed.connect(_on_login_failed, dispatch_uid="digits_site.attempts")


class AddressLimitBackend:
    """First of the authentication backends: an address whose failures are used up
    is refused before any password is compared (Django then stops asking the
    other backends). :class:`AddressLimitMiddleware` turns that into a 429."""

    def authenticate(self, request, **credentials):
        wait = refused_for(request)
        if wait is not None:
            request.digits_auth_refused = wait
            raise PermissionDenied
        return None

    # No get_user(): this backend signs no one in, so no session may name it
    # (``force_login`` takes the first backend that has one).


class AddressLimitMiddleware:
    """A sign-in refused for its address answers 429 with the wait, not the form's
    "wrong password" (which would invite more tries)."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        wait = getattr(request, "digits_auth_refused", None)
        if wait is None:
            return response
        message = (
            "Too many failed sign-ins from your address; "
            f"try again in {math.ceil(wait / 60)} minute(s)."
        )
        if request.path.startswith("/api/"):
            refusal = JsonResponse({"error": message, "code": "throttled"}, status=429)
        else:
            refusal = HttpResponse(message, status=429, content_type="text/plain; charset=utf-8")
        refusal["Retry-After"] = str(wait)
        return refusal


class TokenAuthentication(authentication.TokenAuthentication):
    """DRF's token authentication, with wrong tokens counted against the address:
    past the limit, a token is not even looked up (429)."""

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        wait = refused_for(request)
        if wait is not None:
            raise exceptions.Throttled(
                wait=wait, detail="Too many wrong API tokens from your address."
            )
        try:
            return super().authenticate(request)
        except exceptions.AuthenticationFailed:
            count_failure(request)
            raise
