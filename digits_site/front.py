"""The front door: what every request meets before Django reads a byte of its body.

``make run`` has no nginx in front of gunicorn, so the body limit nginx applies
behind compose is applied here too, on every path: Django's own limit covers only
form fields and JSON, and a multipart POST to any page (``/``, ``/admin/login/``)
spooled its files to ``/tmp`` whatever their size before the CSRF check
refused it. A body declared larger than the limit is refused before it is read,
and the connection is closed rather than drained.

Bodies the application left unread (a 429 or an early 400) are discarded here
in megabyte reads: gunicorn discards them a kilobyte at a time, copying its
read-ahead buffer of up to a megabyte at every step, which made a throttled
3 MB request cost a worker about 40 ms of CPU instead of 2 (measured with
``benchmarks/hostile_load.py``: one address's refused requests starved another
address's predictions for seconds).

The admin's upload forms (a Kaggle test.csv, drawings) take larger bodies, from
staff only: :class:`StaffUploads` checks who is signed in before the body is read.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable, Iterable

from django.conf import settings
from django.core.handlers.wsgi import LimitedStream
from django.http import JsonResponse

# Set in a request's environ by whoever refused it unread: close the connection
# instead of reading the rest of a body that may be a gigabyte.
CLOSE = "digits.close_connection"
STAFF_PREFIX = "/admin/"
# After refusing a body unread: how long, and how much, to go on reading what the
# client still sends before closing (nginx's lingering close). Closing at once with
# bytes unread makes the kernel reset the connection, and the client loses the
# answer it was sent; most clients read it once they have sent their body.
LINGER_SECONDS = 5.0
LINGER_BYTES = 1 << 30


def declared_length(environ: dict) -> int:
    """The body's Content-Length (0 when absent or malformed: Django then reads
    nothing, and a chunked body without a length is never read)."""
    try:
        return max(0, int(environ.get("CONTENT_LENGTH") or 0))
    except ValueError:
        return 0


def body_limit(path: str) -> int:
    """The most a body may declare on ``path`` before anyone is known: the admin's
    forms allow staff uploads (checked by :class:`StaffUploads`), all else the
    public limit."""
    if path.startswith(STAFF_PREFIX):
        return max(settings.DIGITS_MAX_STAFF_UPLOAD_BYTES, settings.DATA_UPLOAD_MAX_MEMORY_SIZE)
    return settings.DATA_UPLOAD_MAX_MEMORY_SIZE


def too_large_message(limit: int) -> dict[str, str]:
    return {"error": f"The request body is larger than the limit ({limit} bytes).",
            "code": "too_large"}  # fmt: skip


def _close_after_response(start_response: Callable) -> None:
    """Ask gunicorn to close the connection after this response (its Response
    object is the ``start_response`` method's owner); other servers close a
    connection whose body was not read on their own terms."""
    force_close = getattr(getattr(start_response, "__self__", None), "force_close", None)
    if callable(force_close):
        force_close()


class _ThenLinger:
    """A response whose ``close()`` (called by the server once it is sent) shuts the
    sending side and discards what the client still sends, for a while."""

    def __init__(self, body: Iterable[bytes], sock: socket.socket) -> None:
        self.body, self.sock = body, sock

    def __iter__(self):
        return iter(self.body)

    def close(self) -> None:
        close = getattr(self.body, "close", None)
        if callable(close):
            close()
        linger(self.sock)


def linger(sock: socket.socket) -> None:
    """Shut our side, then read and drop (megabytes at a time, yielding to other
    requests under gevent) until the client closes, or for LINGER_SECONDS."""
    deadline, read = time.monotonic() + LINGER_SECONDS, 0
    try:
        sock.shutdown(socket.SHUT_WR)
        while read < LINGER_BYTES and (left := deadline - time.monotonic()) > 0:
            sock.settimeout(left)
            data = sock.recv(1 << 20)
            if not data:
                break
            read += len(data)
    except OSError:  # a timeout, or the client went away: either way, done
        pass


def _closing(environ: dict, start_response: Callable, body: Iterable[bytes]) -> Iterable[bytes]:
    """``body`` as the last answer on this connection, with a lingering close
    where the server gives us its socket (gunicorn)."""
    _close_after_response(start_response)
    sock = environ.get("gunicorn.socket")
    return _ThenLinger(body, sock) if sock is not None else body


class Front:
    """WSGI middleware around Django: the body limit on every path, and unread
    bodies discarded cheaply."""

    def __init__(self, app: Callable) -> None:
        self.app = app

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        length = declared_length(environ)
        limit = body_limit(environ.get("PATH_INFO", ""))
        if length > limit:
            body = json.dumps(too_large_message(limit)).encode()
            headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
            start_response("413 Payload Too Large", headers)
            return _closing(environ, start_response, [body])
        stream = environ["wsgi.input"] = LimitedStream(environ["wsgi.input"], length)
        result = self.app(environ, start_response)
        if environ.get(CLOSE):
            return _closing(environ, start_response, result)
        if length:
            stream.read()  # what the application left: in one call, at most `length`
        return result


class StaffUploads:
    """Django middleware (after authentication): a body over the public limit, which
    only the admin's paths let through :class:`Front`, is read only for staff."""

    def __init__(self, get_response: Callable) -> None:
        self.get_response = get_response

    def __call__(self, request):
        too_large = declared_length(request.META) > settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if too_large and request.path_info.startswith(STAFF_PREFIX):
            user = request.user
            if not (user.is_active and user.is_staff):
                request.META[CLOSE] = True
                return JsonResponse(
                    too_large_message(settings.DATA_UPLOAD_MAX_MEMORY_SIZE), status=413
                )
        return self.get_response(request)
