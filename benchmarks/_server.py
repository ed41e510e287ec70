"""Start the app as ``make run`` does (gunicorn via ``manage.py serve``) in a
throwaway data directory, for benchmarks that measure it from outside."""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running_app(
    workers: int | None = None,
    env: dict | None = None,
    data_dir: str | None = None,
    worker: bool = False,
):
    """Yield (host, port) of a fresh instance with the bootstrap model active, in
    ``data_dir`` (a temporary folder unless given); ``worker``: with the Celery
    worker and embedded Redis, exactly as ``make run`` starts them."""
    with contextlib.ExitStack() as stack:
        if data_dir is None:
            data_dir = stack.enter_context(tempfile.TemporaryDirectory())
        env = {**os.environ, "DIGITS_DATA_DIR": data_dir, "DIGITS_RUN_WORKER": "1" if worker else "0",
               "DIGITS_PREDICT_RATE": "100000000/min", "DIGITS_WARM_CACHES": "0",
               **(env or {})}  # fmt: skip
        if workers:
            env["WEB_CONCURRENCY"] = str(workers)
        manage = [sys.executable, str(ROOT / "manage.py")]
        for command in (["migrate", "-v0"], ["ensure_model"]):
            subprocess.run(manage + command, env=env, check=True, capture_output=True)
        port = free_port()
        server = subprocess.Popen(
            [*manage, "serve", "--port", str(port), *([] if worker else ["--no-worker"])],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            wait_until_up("127.0.0.1", port)
            yield "127.0.0.1", port
        finally:
            server.terminate()
            server.wait(timeout=20)


def wait_until_up(host: str, port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            connection = http.client.HTTPConnection(host, port, timeout=2)
            connection.request("GET", "/api/dataset/stats/")
            if connection.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"nothing answered on {host}:{port}")


def canvas_bodies(n: int = 50, *, strokes: bool = False) -> list[bytes]:
    """Real pen digits by unseen writers, as the page would POST them: the canvas
    PNG or, with ``strokes``, as a live prediction sends them: the strokes the page
    recorded while drawing and the part of the pad with ink, with its place."""
    import _django  # noqa: F401

    from classifier import canvas
    from training.sources import pendigits as pen_source

    digits = [
        d
        for d in pen_source.load_pendigit_strokes()
        if d.writer in pen_source.PENDIGITS_TEST_WRITERS
    ]
    bodies = []
    for d in digits[:n]:
        if strokes:  # as the page sends them: the part of the pad with ink, and where
            recorded = canvas.strokes_as_json(canvas.timed(canvas.fit_to_canvas(d.strokes)))
            png, placement = canvas.render_canvas_piece(canvas.parse_strokes(recorded))
            body = {"image": "data:image/png;base64," + base64.b64encode(png).decode(),
                    "strokes": recorded, "canvas": placement}  # fmt: skip
        else:
            png = canvas.render_strokes(d.strokes)
            body = {"image": "data:image/png;base64," + base64.b64encode(png).decode()}
        bodies.append(json.dumps(body).encode())
    return bodies


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def predict_client(host, port, bodies, stop_at, timings, errors, offset, timeout=10,
                   source=None, pause=0.0):  # fmt: skip
    """One keep-alive client POSTing canvas PNGs to /api/predict/ until ``stop_at``;
    appends each latency (ms) to ``timings`` and each failure to ``errors`` (a
    request unanswered after ``timeout`` seconds is one). ``source``: the loopback
    address to send from (another client, as the rate limits see it); ``pause``:
    seconds between requests."""

    def connect() -> http.client.HTTPConnection:
        address = (source, 0) if source else None
        return http.client.HTTPConnection(host, port, timeout=timeout, source_address=address)

    connection = connect()
    i = offset
    while time.monotonic() < stop_at:
        started = time.perf_counter()
        try:
            connection.request("POST", "/api/predict/", bodies[i % len(bodies)],
                               {"Content-Type": "application/json"})  # fmt: skip
            response = connection.getresponse()
            response.read()
            if response.status != 200:
                errors.append(response.status)
        except OSError as exc:
            errors.append(repr(exc))
            connection = connect()
        timings.append((time.perf_counter() - started) * 1000)
        i += 1
        time.sleep(pause)


def run_concurrently(threads: list) -> float:
    """Start every client thread, wait for all; the wall time in seconds."""
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.monotonic() - started


def latency_summary(timings: list[float]) -> str:
    return (
        f"p50 {percentile(timings, 50):.1f} ms  p95 {percentile(timings, 95):.1f} ms  "
        f"p99 {percentile(timings, 99):.1f} ms"
    )
