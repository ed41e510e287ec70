"""How every error looks to a client: ``{"error": "...", "code": "..."}``.

The API's error types (raised by any app's views), DRF's exception handler
(the settings point here), and the answers Django gives before any API view
runs (an unknown URL, a crash): JSON under ``/api/``, the usual pages elsewhere.
"""

from __future__ import annotations

import errno
import logging

from django.core.exceptions import RequestDataTooBig
from django.db import OperationalError
from django.http import JsonResponse
from django.views import defaults
from rest_framework import status
from rest_framework.exceptions import APIException
from rest_framework.views import exception_handler

from digits_site.refusals import Refused

logger = logging.getLogger(__name__)


class BadInput(APIException):
    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "bad_input"


class PayloadTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "too_large"


class QuotaExceeded(APIException):
    """A client's share of the dataset is used up for now (``collector.abuse``)."""

    status_code = status.HTTP_429_TOO_MANY_REQUESTS
    default_code = "quota_exceeded"


class ServiceUnavailable(APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_code = "unavailable"


class DatabaseBusy(ServiceUnavailable):
    """The database could not take the write in time (SQLite under concurrent writers,
    or a database server that is down): nothing was saved, and the client may retry."""

    default_detail = "The database is busy right now; nothing was saved. Try again in a moment."
    default_code = "database_busy"
    wait = 2  # seconds, sent as Retry-After


class StorageFull(APIException):
    """The server's disk is full: nothing was saved, and retrying will not help
    until staff free some space."""

    status_code = status.HTTP_507_INSUFFICIENT_STORAGE
    default_detail = (
        "The server's disk is full, so nothing was saved. Please try again later; "
        "the site's staff have to free some space first."
    )
    default_code = "storage_full"


def disk_full(exc: BaseException | None) -> bool:
    """No space left on a device, from the OS (ENOSPC) or SQLite, wherever in the
    chain of causes it is (Keras and h5py wrap the OSError they hit)."""
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
            return True
        if "No space left on device" in str(exc) or "database or disk is full" in str(exc):
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


class Conflict(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"


def json_exception_handler(exc, context):
    """DRF's handler, reshaped to ``{"error": message}`` (plus ``code``)."""
    if isinstance(exc, RequestDataTooBig):
        exc = PayloadTooLarge("The request body is larger than the limit.")
    if isinstance(exc, Refused):
        exc = _as_api_exception(exc)
    if disk_full(exc):
        logger.error("Disk full: %s", exc)
        exc = StorageFull()
    elif isinstance(exc, OperationalError):
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


def _as_api_exception(exc: Refused) -> APIException:
    if exc.status == status.HTTP_413_REQUEST_ENTITY_TOO_LARGE:
        return PayloadTooLarge(str(exc))
    if exc.status == status.HTTP_503_SERVICE_UNAVAILABLE:
        return ServiceUnavailable(str(exc))
    return BadInput(str(exc), code=exc.code)


def _is_api(request) -> bool:
    return request.path.startswith("/api/")


def not_found(request, exception=None):
    if _is_api(request):
        return JsonResponse(
            {"error": f"There is no API endpoint at {request.path}.", "code": "not_found"},
            status=404,
        )
    return defaults.page_not_found(request, exception)


def bad_request(request, exception=None):
    if _is_api(request):
        return JsonResponse({"error": "Bad request.", "code": "bad_request"}, status=400)
    return defaults.bad_request(request, exception)


def server_error(request):
    if _is_api(request):
        return JsonResponse(
            {"error": "Something went wrong on our side; it has been logged.", "code": "error"},
            status=500,
        )
    return defaults.server_error(request)
