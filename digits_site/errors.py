"""Errors Django answers before any API view runs (an unknown URL, a crash): JSON
under ``/api/`` like every other API answer, the usual pages elsewhere."""

from __future__ import annotations

from django.http import JsonResponse
from django.views import defaults


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
