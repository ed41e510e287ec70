"""The public edge, for real: the server ``make run`` starts, and Debian's nginx with
compose's configuration in front of it, against slow clients, spoofed addresses
and floods. Processes on loopback; clients of different addresses bind to
127.0.0.2, 127.0.0.3, … (all loopback on Linux)."""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from operations import services

from .conftest import data_url, instance_env
from .slowloris import SlowClients

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.integration


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SourceConnection(http.client.HTTPConnection):
    """A client with its own loopback address."""

    def __init__(self, port: int, source: str = "127.0.0.1", timeout: float = 10):
        super().__init__("127.0.0.1", port, timeout=timeout, source_address=(source, 0))


def call(port, method, path, body=None, source="127.0.0.1", headers=None, timeout=10):
    connection = SourceConnection(port, source, timeout)
    payload = json.dumps(body).encode() if isinstance(body, dict) else body
    connection.request(
        method, path, payload, {"Content-Type": "application/json", **(headers or {})}
    )
    response = connection.getresponse()
    data = response.read()
    connection.close()
    return response.status, (json.loads(data) if data[:1] == b"{" else data)


@contextlib.contextmanager
def served(tmp_path: Path, **env: str):
    """``manage.py serve`` exactly as ``make run`` runs it (embedded Redis, no worker)."""
    data = tmp_path / "data"
    environment = instance_env(data, **{"DIGITS_RUN_WORKER": "0", **env})
    manage = [sys.executable, str(ROOT / "manage.py")]
    for command in (["migrate", "-v0"], ["ensure_model"]):
        subprocess.run(manage + command, env=environment, check=True, capture_output=True)
    port = free_port()
    process = subprocess.Popen(
        [*manage, "serve", "--port", str(port), "--workers", "2"],
        env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if call(port, "GET", "/api/dataset/stats/", timeout=2)[0] == 200:
                    break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.2)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=30)


@contextlib.contextmanager
def behind_nginx(tmp_path: Path, app_port: int, **options):
    port = free_port()
    process = services.start_nginx(port, f"127.0.0.1:{app_port}", tmp_path / "nginx", **options)
    try:
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="module")
def canvas_body(pen_digits):
    from classifier import canvas

    return {"image": data_url(canvas.render_strokes(pen_digits[0].strokes))}


def answered_while_slow_clients_hold(port: int, body: dict, slow: SlowClients) -> list[float]:
    """Fresh clients' predictions while the slow ones hang on: each must be answered
    (a blocked server leaves them to time out after 5 s)."""
    seconds = []
    for _ in range(30):
        started = time.monotonic()
        status, answer = call(port, "POST", "/api/predict/", body, timeout=5)
        assert status == 200, answer
        seconds.append(time.monotonic() - started)
    return seconds


def test_two_hundred_slow_clients_do_not_block_anyone_under_make_run(tmp_path, canvas_body):
    with served(tmp_path) as port, SlowClients("127.0.0.1", port, 200) as slow:
        time.sleep(2.5)  # a trickle or two in
        seconds = answered_while_slow_clients_hold(port, canvas_body, slow)
        assert slow.open == 200, "the server must be holding every slow connection meanwhile"
    assert max(seconds) < 2, seconds


def test_two_hundred_slow_clients_do_not_block_anyone_behind_nginx(tmp_path, canvas_body):
    with (
        served(tmp_path) as app,
        behind_nginx(tmp_path, app) as port,
        SlowClients("127.0.0.1", port, 200, many_addresses=True) as slow,
    ):
        time.sleep(2.5)
        seconds = answered_while_slow_clients_hold(port, canvas_body, slow)
        assert slow.open + slow.dropped == 200
    assert max(seconds) < 2, seconds


def test_the_app_believes_nginx_and_nobody_else(tmp_path, canvas_png):
    """Through nginx, two addresses get a contribution limit each, whatever they claim
    in X-Forwarded-For; straight to the app, the claim is ignored."""
    from .conftest import data_url

    def contribution(k: int) -> dict:
        return {"image": data_url(canvas_png(k % 10, k // 10)), "label": k % 10}

    with (
        served(tmp_path, DIGITS_TRUSTED_PROXIES="127.0.0.1", DIGITS_CONTRIBUTE_RATE="2/min") as app,
        behind_nginx(tmp_path, app) as edge,
    ):
        spoof = {"X-Forwarded-For": "203.0.113.77"}
        codes = {
            source: [
                call(edge, "POST", "/api/drawings/", contribution(k + 3 * i), source, spoof)[0]
                for k in range(3)
            ]
            for i, source in enumerate(["127.0.0.2", "127.0.0.3"])
        }
        assert codes == {"127.0.0.2": [201, 201, 429], "127.0.0.3": [201, 201, 429]}
        # Straight to the app from an address that is not the proxy: a new claimed
        # address per request changes nothing.
        # fmt: off
        direct = [
            call(app, "POST", "/api/drawings/", contribution(10 + k), "127.0.0.4",
                 {"X-Forwarded-For": f"198.51.100.{k}"})[0]
            for k in range(4)
        ]
        # fmt: on
        assert direct == [201, 201, 429, 429]


def test_nginx_refuses_floods_and_huge_bodies_in_json(tmp_path, canvas_body):
    with (
        served(tmp_path) as app,
        behind_nginx(tmp_path, app, api_rate="5r/s", api_burst=5) as edge,
    ):
        answers = [call(edge, "POST", "/api/predict/", canvas_body) for _ in range(30)]
        refused = [answer for status, answer in answers if status == 429]
        assert refused and all(a["code"] == "throttled" for a in refused)
        assert sum(status == 200 for status, _ in answers) >= 5
        time.sleep(1.5)
        status, answer = call(edge, "POST", "/api/predict/", b"{" + b" " * 5_000_000 + b"}")
        assert status == 413 and answer["code"] == "too_large"
