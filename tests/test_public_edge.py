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
    # From 200 addresses: one address may not hold that many (the next test).
    with (
        served(tmp_path) as port,
        SlowClients("127.0.0.1", port, 200, many_addresses=True) as slow,
    ):
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


def refused(sockets: list[socket.socket]) -> list[socket.socket]:
    """Those of these connections the server answered and closed at once (they read
    as ready); it still holds the others."""
    import select

    time.sleep(1.0)
    return select.select(sockets, [], [], 0)[0]


def test_one_address_holds_a_bounded_number_of_connections_under_make_run(tmp_path, canvas_body):
    # Two workers, DIGITS_CONNECTIONS_PER_ADDRESS=64: 32 each from one address.
    with served(tmp_path) as port:
        crowd = []
        try:
            for _ in range(100):
                connection = socket.create_connection(("127.0.0.1", port), timeout=5,
                                                      source_address=("127.0.0.2", 0))  # fmt: skip
                connection.sendall(b"POST /admin/login/ HTTP/1.1\r\nHost: 127.0.0.1\r\n")
                crowd.append(connection)
            turned_away = refused(crowd)
            assert 32 <= len(crowd) - len(turned_away) <= 64, len(turned_away)
            assert turned_away[0].recv(200).startswith(b"HTTP/1.1 429 ")
            # Anyone else is served meanwhile.
            assert call(port, "POST", "/api/predict/", canvas_body, source="127.0.0.3")[0] == 200
        finally:
            for connection in crowd:
                connection.close()
        time.sleep(0.5)  # the server notices the closes
        assert call(port, "POST", "/api/predict/", canvas_body, source="127.0.0.2")[0] == 200


def raw_post(port: int, path: str, length: int, first_bytes: bytes, source="127.0.0.2") -> bytes:
    """Headers declaring ``length`` bytes, then only ``first_bytes`` of them: what
    the server answers, and whether it then closes (``b""`` after the answer)."""
    connection = socket.create_connection(("127.0.0.1", port), timeout=10,
                                          source_address=(source, 0))  # fmt: skip
    with connection:
        connection.sendall(
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {length}\r\n"
            "Content-Type: multipart/form-data; boundary=x\r\n\r\n".encode()
            + first_bytes
        )
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
        return answer


def test_every_path_refuses_a_body_over_the_limit_before_reading_it(tmp_path, canvas_body):
    spool = tmp_path / "tmp"
    spool.mkdir()
    start = b'--x\r\nContent-Disposition: form-data; name="f"; filename="a"\r\n\r\n' + b"a" * 65536
    with served(tmp_path, TMPDIR=str(spool)) as port:
        for path, length in [("/", 1 << 30), ("/admin/login/", 1 << 30),
                             ("/admin/login/", 10 << 20), ("/api/predict/", 10 << 20),
                             ("/dataset/", 4 << 20)]:  # fmt: skip
            started = time.monotonic()
            answer = raw_post(port, path, length, start)  # returns once the server closes
            head, _, body = answer.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 413"), (path, length, head)
            assert json.loads(body)["code"] == "too_large", body
            assert time.monotonic() - started < 5, "refused at once, not after reading it"
        assert list(spool.iterdir()) == [], "nothing was spooled to disk"


def test_a_body_left_unread_is_discarded_and_the_connection_goes_on(tmp_path, canvas_body):
    body = b"{" + b" " * (2 << 20) + b"}"  # 2 MB, under the limit: refused unread (405)
    with served(tmp_path) as port:
        connection = SourceConnection(port)
        connection.request(
            "POST", "/api/dataset/stats/", body, {"Content-Type": "application/json"}
        )
        response = connection.getresponse()
        assert response.status == 405 and json.loads(response.read())["code"]
        connection.request("POST", "/api/predict/", json.dumps(canvas_body),
                           {"Content-Type": "application/json"})  # fmt: skip
        response = connection.getresponse()
        assert response.status == 200, response.read()
        assert "digit" in json.loads(response.read())
        connection.close()


def test_with_redis_down_limits_hold_per_web_process_and_answers_stay_fast(tmp_path, pen_digits):
    """An external Redis that refuses connections: each web process counts on its
    own, so one address gets at most the limit times the processes (two here), and
    no request waits on Redis."""
    from classifier import canvas

    drawings = [d for d in pen_digits if d.label in (3, 5)][:40]
    bodies = [{"image": data_url(canvas.render_strokes(d.strokes)), "label": d.label}
              for d in drawings]  # fmt: skip
    codes, slowest = [], 0.0
    with served(tmp_path, REDIS_URL="redis://127.0.0.1:9/0", DIGITS_CONTRIBUTE_RATE="10/min",
                DIGITS_AUTO_APPROVE="1") as port:  # fmt: skip
        for body in bodies:  # a new connection each: the kernel spreads them
            started = time.monotonic()
            codes.append(call(port, "POST", "/api/drawings/", body, source="127.0.0.2")[0])
            slowest = max(slowest, time.monotonic() - started)
    stored = codes.count(201) + codes.count(200)
    assert 10 <= stored <= 20, codes
    assert set(codes) <= {200, 201, 429}, codes
    assert slowest < 1.0, f"a request waited {slowest:.1f} s"


class DyingServer:
    """A web server that reads each request in full, notes it and resets the
    connection without answering: a server killed with the request in hand."""

    def __init__(self) -> None:
        import threading

        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.took: list[str] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        import struct

        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            with connection:
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = connection.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                head, _, body = data.partition(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                length = next(
                    (int(x.split(":")[1]) for x in lines if x.lower().startswith("content-length")),
                    0,
                )
                while len(body) < length:
                    chunk = connection.recv(65536)
                    if not chunk:
                        break
                    body += chunk
                if lines[0]:
                    self.took.append(" ".join(lines[0].split()[:2]))
                connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    def close(self) -> None:
        self.listener.close()


def test_nginx_sends_again_only_the_posts_that_are_safe_to_repeat(tmp_path):
    # Both web servers take the request and die with it: nginx's edge may send a
    # prediction or a drawing (stored by its content) to the other one, but never a
    # POST that would do its work twice, such as starting a training run.
    servers = [DyingServer(), DyingServer()]
    upstreams = [f"127.0.0.1:{server.port}" for server in servers]

    def tried(method: str, path: str) -> int:
        """How many web servers got the request (a fresh nginx each time: both
        servers failed leave none to try for five seconds)."""
        port = free_port()
        nginx = services.start_nginx(port, upstreams, tmp_path / f"nginx-{port}")
        try:
            for server in servers:
                server.took.clear()
            status, answer = call(port, method, path, {"x": 1})
            assert status == 503 and answer["code"] == "unavailable", (status, answer)
            return sum(f"{method} {path}" in server.took for server in servers)
        finally:
            nginx.terminate()
            nginx.wait(timeout=10)

    try:
        assert tried("POST", "/api/drawings/") == 2
        assert tried("POST", "/api/predict/") == 2
        assert tried("POST", "/api/predict/batch/") == 2
        assert tried("GET", "/api/dataset/stats/") == 2
        assert tried("POST", "/api/training-runs/") == 1
        assert tried("POST", "/api/models/3/promote/") == 1
        assert tried("POST", "/api/drawings/7/whatever/") == 1
    finally:
        for server in servers:
            server.close()
