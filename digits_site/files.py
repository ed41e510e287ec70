"""Serving files kept in Django storage, which the web server does not serve itself."""

from django.core.files.storage import default_storage
from django.http import FileResponse, Http404


def stored_png_response(name: str) -> FileResponse:
    """A stored PNG, never sniffed or rendered as anything else; 404 if it is gone."""
    try:
        handle = default_storage.open(name, "rb")
    except OSError:
        raise Http404 from None
    response = FileResponse(handle, content_type="image/png")
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response
