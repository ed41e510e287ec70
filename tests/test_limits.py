"""Who a client is, and rate limits that hold: atomic, shared, charged by the work,
and safe when Redis is gone."""

from __future__ import annotations

import io
import json
import threading

import pytest
import redis
from django.test import RequestFactory
from PIL import Image, ImageDraw

from collector.models import Drawing
from digits_site import clients, limits

from .conftest import data_url, set_rates


def contribute(client, png: bytes, label: int, **headers):
    return client.post(
        "/api/drawings/",
        json.dumps({"image": data_url(png), "label": label}),
        content_type="application/json",
        **headers,
    )


def predict(client, png: bytes, **headers):
    return client.post(
        "/api/predict/",
        json.dumps({"image": data_url(png)}),
        content_type="application/json",
        **headers,
    )


def big_png(side: int = 1024) -> bytes:
    """A large scan-like image: a dark 7 on white paper."""
    image = Image.new("L", (side, side), 255)
    ImageDraw.Draw(image).line(
        [(side * 0.2, side * 0.2), (side * 0.8, side * 0.2), (side * 0.4, side * 0.85)],
        fill=0,
        width=side // 16,
    )
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


# -- who is a client -----------------------------------------------------------


def request_from(peer: str, forwarded: str | None = None):
    headers = {"REMOTE_ADDR": peer}
    if forwarded is not None:
        headers["HTTP_X_FORWARDED_FOR"] = forwarded
    return RequestFactory().get("/", **headers)


def test_forwarded_headers_are_ignored_without_a_configured_proxy(settings):
    settings.DIGITS_TRUSTED_PROXIES = []
    assert clients.client_address(request_from("203.0.113.9", "1.2.3.4")) == "203.0.113.9"


def test_forwarded_headers_are_ignored_from_a_client_that_is_not_the_proxy(settings):
    settings.DIGITS_TRUSTED_PROXIES = ["10.0.0.5"]
    assert clients.client_address(request_from("203.0.113.9", "1.2.3.4")) == "203.0.113.9"


def test_the_proxys_header_names_the_client(settings):
    settings.DIGITS_TRUSTED_PROXIES = ["10.0.0.0/24"]
    # The client wrote "6.6.6.6" itself; our proxy appended what it saw.
    request = request_from("10.0.0.5", "6.6.6.6, 198.51.100.7")
    assert clients.client_address(request) == "198.51.100.7"
    # Through two proxies of ours, the first untrusted hop from the right counts.
    request = request_from("10.0.0.5", "6.6.6.6, 198.51.100.7, 10.0.0.9")
    assert clients.client_address(request) == "198.51.100.7"
    # A garbled header from the proxy's side: the proxy itself is the client.
    assert clients.client_address(request_from("10.0.0.5", "not-an-ip")) == "10.0.0.5"
    assert clients.client_address(request_from("10.0.0.5", "")) == "10.0.0.5"


def test_ipv6_clients_are_counted_by_their_slash_64(settings):
    one = clients.client_key(request_from("2001:db8:1:2::1"))
    same_subscriber = clients.client_key(request_from("2001:db8:1:2:ffff::9"))
    neighbour = clients.client_key(request_from("2001:db8:1:3::1"))
    assert one == same_subscriber != neighbour
    assert "2001" not in one  # no raw address in keys or rows


def test_spoofed_addresses_from_a_direct_client_do_not_reset_the_limit(
    client, active_model, canvas_png, settings
):
    """The attack that got 200 of 200 contributions through a 30/min limit."""
    set_rates(settings, contribute="3/min")
    settings.DIGITS_TRUSTED_PROXIES = []
    codes = [
        contribute(
            client, canvas_png(k % 10, k // 10), k % 10, HTTP_X_FORWARDED_FOR=f"10.1.{k}.{k}"
        ).status_code
        for k in range(20)
    ]
    assert codes.count(201) == 3 and codes.count(429) == 17
    assert Drawing.objects.count() == 3


def test_clients_behind_the_trusted_proxy_are_counted_apart(
    client, active_model, canvas_png, settings
):
    set_rates(settings, contribute="2/min")
    settings.DIGITS_TRUSTED_PROXIES = ["127.0.0.1"]  # the test client's REMOTE_ADDR
    codes = {
        who: [
            contribute(client, canvas_png(k, i), k, HTTP_X_FORWARDED_FOR=who).status_code
            for k in range(3)
        ]
        for i, who in enumerate(["198.51.100.1", "198.51.100.2"])
    }
    assert codes == {"198.51.100.1": [201, 201, 429], "198.51.100.2": [201, 201, 429]}


# -- counters -----------------------------------------------------------------


def test_counters_are_atomic_across_processes_and_threads():
    """Four counters (four web processes, each with its own connection) and four
    threads each, racing for the same 100 units: exactly 100 are granted."""
    rate = limits.Rate(100, 60)
    granted = []
    lock = threading.Lock()

    def hammer(counters: limits.Counters) -> None:
        mine = sum(counters.take("race:client", 1, rate, now=1_000_030.0)[0] for _ in range(60))
        with lock:
            granted.append(mine)

    processes = [limits.Counters() for _ in range(4)]
    threads = [threading.Thread(target=hammer, args=(c,)) for c in processes for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(granted) == 100
    assert all(c._down_until == 0 for c in processes), "fell back to memory: not a Redis test"


def test_the_window_slides():
    counters, rate = limits.Counters(), limits.Rate(10, 60)
    minute = 1_000_020.0 - 1_000_020.0 % 60
    assert counters.take("slide", 10, rate, now=minute + 59)[0]
    assert not counters.take("slide", 1, rate, now=minute + 59.5)[0]
    # Half-way through the next minute, half of last minute's 10 still count.
    assert counters.take("slide", 5, rate, now=minute + 90)[0]
    assert not counters.take("slide", 1, rate, now=minute + 90)[0]
    allowed, wait = counters.take("slide", 1, rate, now=minute + 90)
    assert not allowed and 1 <= wait <= 60


def test_rates_are_read_as_drf_spells_them():
    assert limits.Rate.parse("600/min") == limits.Rate(600, 60)
    assert limits.Rate.parse("30/m") == limits.Rate(30, 60)
    assert limits.Rate.parse("5000/day") == limits.Rate(5000, 86400)
    with pytest.raises(ValueError):
        limits.Rate.parse("lots")


# -- charged by the work ----------------------------------------------------------


def test_each_item_of_a_batch_is_charged(client, active_model, canvas_png, settings):
    set_rates(settings, predict="10/min")
    batch = {"images": [data_url(canvas_png(k)) for k in range(8)]}
    post = lambda body: client.post(  # noqa: E731
        "/api/predict/batch/", json.dumps(body), content_type="application/json"
    )
    assert post(batch).status_code == 200
    second = post(batch)
    assert second.status_code == 429 and second.json()["code"] == "throttled"
    assert int(second["Retry-After"]) >= 1
    # The refused batch still cost its request's one unit: 9 used, one left.
    assert post({"images": batch["images"][:1]}).status_code == 200
    assert post({"images": batch["images"][:1]}).status_code == 429


def test_large_images_cost_more(client, active_model, settings):
    set_rates(settings, predict="10/min")
    # 1024×1024 is five units (one for the request, four more for its pixels).
    assert predict(client, big_png()).status_code == 200
    assert predict(client, big_png()).status_code == 200
    assert predict(client, big_png()).status_code == 429


def test_a_batch_has_a_total_pixel_cap(client, active_model, settings):
    set_rates(settings, predict="100000/min")
    body = {"images": [data_url(big_png())] * 9}  # 9.4 megapixels declared
    response = client.post("/api/predict/batch/", json.dumps(body), content_type="application/json")
    assert response.status_code == 413
    assert "at most 8,000,000" in response.json()["error"]


# -- safe without Redis -------------------------------------------------------------


def test_without_redis_predictions_and_contributions_go_on_and_stay_limited(
    client, active_model, canvas_png, settings, tmp_path, monkeypatch
):
    settings.REDIS_URL = f"redis+socket://{tmp_path / 'no-redis.sock'}"
    limits.counters.reset()
    set_rates(settings, predict="3/min", contribute="2/min")
    assert [predict(client, canvas_png(1)).status_code for _ in range(4)] == [200, 200, 200, 429]
    codes = [contribute(client, canvas_png(k), k).status_code for k in range(3)]
    assert codes == [201, 201, 429]
    assert limits.counters._down_until > 0  # it knows, and retries Redis later


def test_redis_refusing_writes_is_not_a_500(client, active_model, canvas_png, monkeypatch):
    """A full disk under Redis (MISCONF) or its memory limit (OOM) is the old
    'cache write raised, predict answered 500'."""

    def refuse(*args, **kwargs):
        raise redis.exceptions.ResponseError(
            "MISCONF Redis is configured to save RDB snapshots, but it's currently unable to "
            "persist to disk."
        )

    monkeypatch.setattr(limits.counters, "_redis_script", lambda: refuse)
    assert predict(client, canvas_png(3)).status_code == 200
    assert contribute(client, canvas_png(3), 3).status_code == 201


def test_redis_comes_back(client, active_model, canvas_png, settings, monkeypatch, limits_redis):
    settings.REDIS_URL = "redis+socket:///nonexistent/redis.sock"
    limits.counters.reset()
    assert predict(client, canvas_png(1)).status_code == 200
    assert limits.counters._down_until > 0
    settings.REDIS_URL = limits_redis
    limits.counters._client = limits.counters._script = None
    monkeypatch.setattr(limits, "RETRY_SECONDS", 0)
    limits.counters._down_until = 0
    assert predict(client, canvas_png(1)).status_code == 200
    keys = list(limits._redis_client().scan_iter("digits:rl:predict:*"))
    assert keys, "the count went back to Redis"


def test_sign_in_records_no_address_rather_than_a_word_when_there_is_none():
    from django.test import RequestFactory

    from digits_site import clients

    request = RequestFactory().get("/", REMOTE_ADDR="")
    assert clients.client_address(request) == "unknown"  # one shared rate-limit key
    assert clients.login_address(request) is None  # an IP column takes no words
    assert clients.login_address(RequestFactory().get("/", REMOTE_ADDR="192.0.2.4")) == "192.0.2.4"


def test_a_redis_that_never_answers_is_asked_once_and_given_up_on(
    client, active_model, canvas_png, settings, tmp_path
):
    """A Redis that accepts connections and then says nothing (a hung server): each
    charge tries once, within its 0.2 s, rather than redis-py's retries with
    back-off (6 s a request, measured, on the embedded Redis' unix socket)."""
    import socket
    import threading

    # given a "Redis" on a unix socket (the embedded one's way) that accepts and
    # never answers
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(tmp_path / "hung.sock"))
    server.listen(16)
    accepted = []

    def accept():
        while True:
            try:
                accepted.append(server.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    limits.counters.reset()
    settings.REDIS_URL = f"redis+socket://{tmp_path / 'hung.sock'}"
    try:
        # when a prediction is charged
        assert predict(client, canvas_png(2)).status_code == 200
        # then Redis was tried on one connection only, and given up on for a while
        assert len(accepted) == 1 and limits.counters._down_until > 0
    finally:
        server.close()
        for connection in accepted:
            connection.close()
