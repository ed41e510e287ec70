"""Serving files kept in Django storage, which the web server does not serve itself."""

from django.core.files.storage import default_storage
from django.http import FileResponse, Http404


def stored_file_response(
    name: str, content_type: str, *, download_as: str | None = None
) -> FileResponse:
    """A stored file, never sniffed or rendered as anything else; 404 if it is gone."""
    try:
        handle = default_storage.open(name, "rb")
    except OSError:
        raise Http404 from None
    response = FileResponse(
        handle,
        content_type=content_type,
        as_attachment=download_as is not None,
        filename=download_as or "",
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


def stored_png_response(name: str) -> FileResponse:
    return stored_file_response(name, "image/png")
