"""Cheap requests built to be expensive: refused from their structure before any
work, and charged by the CPU time they cost when they turn out expensive anyway.
(The figures under load are in ``benchmarks/hostile_load.py``.)"""

from __future__ import annotations

import base64
import json

import pytest

from classifier import canvas, preprocessing
from collector.models import Drawing
from digits_site import limits

from .conftest import data_url, set_rates
from .hostile import many_arrays_json, many_chunk_png, many_scan_jpeg

pytestmark = pytest.mark.django_db


def post(client, path: str, body) -> tuple[int, dict]:
    data = body if isinstance(body, bytes) else json.dumps(body)
    response = client.post(path, data, content_type="application/json")
    return response.status_code, response.json()


@pytest.fixture
def no_decoding(monkeypatch):
    """Fails the test if any image is decoded."""
    decoded = []
    monkeypatch.setattr(preprocessing.Image, "open", lambda *a, **k: decoded.append(a) or 1 / 0)
    return decoded


@pytest.mark.parametrize(
    ("image", "what"),
    [(many_chunk_png(5_000), "PNG has more than"), (many_scan_jpeg(2_000), "JPEG has more than")],
    ids=["png-chunks", "jpeg-scans"],
)
def test_images_built_to_be_slow_are_refused_before_decoding(client, active_model, no_decoding,
                                                             image, what):  # fmt: skip
    status, answer = post(client, "/api/predict/", {"image": data_url(image)})
    assert (status, answer["code"]) == (400, "image_too_complex") and what in answer["error"]
    assert no_decoding == []


def test_normal_images_still_pass_the_structure_check(canvas_png):
    preprocessing.to_model_input(canvas_png(3))
    # a PNG of as many chunks as allowed is read (a blank one: refused for being blank)
    with pytest.raises(preprocessing.BlankDrawing):
        preprocessing.to_model_input(many_chunk_png(preprocessing.MAX_PNG_CHUNKS - 10))


def test_contributions_take_png_only_checked_from_its_first_bytes(client, active_model,
                                                                  no_decoding):  # fmt: skip
    jpeg = many_scan_jpeg(50_000)  # 17 s of CPU if a decoder walked it
    status, answer = post(client, "/api/drawings/", {"image": data_url(jpeg), "label": 3})
    assert status == 400 and "send a PNG" in answer["error"]
    assert no_decoding == [] and Drawing.objects.count() == 0


def test_a_body_of_countless_arrays_is_refused_before_it_is_parsed(
    client, active_model, monkeypatch
):
    parsed = []
    monkeypatch.setattr(json, "load", lambda *a, **k: parsed.append(a) or 1 / 0)
    for path in ("/api/predict/", "/api/drawings/"):
        status, answer = post(client, path, many_arrays_json(1_000_000))  # 3 MB
        assert status == 400 and "more than 10,000 arrays" in answer["error"], answer
    assert parsed == []


def test_the_most_strokes_the_page_may_send_still_parse(client, active_model):
    # 64 strokes of 125 points: 8,000 points, the page's limit, all along one long
    # diagonal (stacked rows of them would be a solid block the API refuses as a
    # blob, answering nothing about the strokes)
    strokes = [
        [[30 + i * 1.5 + k % 4, 30 + i * 1.5, k * 125 + i] for i in range(125)] for k in range(64)
    ]
    png = canvas.render_canvas_png(canvas.parse_strokes(strokes))
    status, answer = post(client, "/api/predict/", {"image": data_url(png), "strokes": strokes})
    assert status == 200, answer


def test_an_expensive_decode_is_charged_by_the_cpu_it_cost(client, settings, active_model,
                                                           canvas_png, monkeypatch):  # fmt: skip
    # given a client allowed 20 predictions a minute, and decoding that turns out
    # expensive (every CPU-microsecond past nothing costs a unit here)
    set_rates(settings, predict="20/min")
    monkeypatch.setattr(limits, "CPU_FREE_SECONDS", 0.0)
    monkeypatch.setattr(limits, "CPU_PER_UNIT", 1e-6)
    body = {"image": data_url(canvas_png(5))}
    # when it sends one drawing, then another
    first, _ = post(client, "/api/predict/", body)
    second, answer = post(client, "/api/predict/", body)
    # then the first used up the minute's allowance by what it cost: the second waits
    assert first == 429 or second == 429, answer
    # while at the normal price the same drawings go through (a new client)
    monkeypatch.setattr(limits, "CPU_FREE_SECONDS", 0.05)
    other = {"REMOTE_ADDR": "192.0.2.77"}
    statuses = [client.post("/api/predict/", json.dumps(body), content_type="application/json",
                            **other).status_code for _ in range(5)]  # fmt: skip
    assert statuses == [200] * 5


def test_the_hostile_files_are_what_they_claim():
    jpeg = many_scan_jpeg(100)
    assert jpeg[:2] == b"\xff\xd8" and jpeg.count(b"\xff\xda") > 100
    png = many_chunk_png(100)
    assert png[:8] == preprocessing.PNG_SIGNATURE and base64.b64encode(png)
