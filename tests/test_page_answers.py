"""What the draw and contribute pages are told: a dot is too small to read, and a
correction answers with what the server kept (and may correct itself)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from classifier import canvas, preprocessing
from collector.models import Drawing

from .conftest import data_url


def post(client, url: str, body: dict):
    return client.post(url, json.dumps(body), content_type="application/json")


@pytest.mark.parametrize(
    "strokes",
    [
        [np.array([[128.0, 128.0]])],  # a tap
        [np.array([[100.0, 100.0], [108.0, 104.0]])],  # a tiny flick
        [np.array([[20.0, 230.0], [24.0, 236.0], [21.0, 238.0]])],  # a scribble in a corner
    ],
)
def test_a_dot_or_a_stray_tap_is_too_small_to_read(client, active_model, strokes):
    png = canvas.render_canvas_png(strokes)
    response = post(client, "/api/predict/", {"image": data_url(png)})
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "too_small" and "too small" in body["error"]
    refused = post(client, "/api/drawings/", {"image": data_url(png), "label": 0})
    assert refused.status_code == 400 and refused.json()["code"] == "too_small"
    assert not Drawing.objects.exists()


def test_small_but_real_digits_are_still_read(client, active_model, canvas_png):
    # a digit drawn small (60 px of a 256 px canvas) is a digit, not a dot
    response = post(client, "/api/predict/", {"image": data_url(canvas_png(7, size=60))})
    assert response.status_code == 200, response.content
    assert response.json()["digit"] == 7


def test_the_span_rule_is_relative_to_the_picture():
    ink = np.zeros((28, 28), np.uint8)
    ink[4:24, 12:15] = 255  # MNIST-like "1": a thin stroke, tall
    assert preprocessing.ink_to_model_input(ink).shape == (28, 28)
    big = np.zeros((1000, 1000), np.uint8)
    big[500:580, 500:520] = 255  # 8 % of the picture
    with pytest.raises(preprocessing.InkTooSmall):
        preprocessing.ink_to_model_input(big)


def correct(client, png: bytes, label: int):
    return post(
        client, "/api/drawings/", {"image": data_url(png), "label": label, "source": "correction"}
    )


def test_a_contributor_can_correct_their_own_correction(client, active_model, canvas_png):
    png = canvas_png(6)
    first = correct(client, png, 6)
    assert first.status_code == 201
    second = correct(client, png, 7)
    assert second.status_code == 200
    body = second.json()
    assert body["duplicate"] and body["relabelled"] and body["label"] == 7
    drawing = Drawing.objects.get()
    assert drawing.label == 7
    again = correct(client, png, 7).json()
    assert again["label"] == 7 and not again["relabelled"]


def test_someone_elses_or_a_reviewed_drawing_keeps_its_label(client, active_model, canvas_png):
    png = canvas_png(6)
    assert correct(client, png, 6).status_code == 201
    # another person (another address) sends the same picture as a 7
    other = type(client)()
    answer = other.post(
        "/api/drawings/",
        json.dumps({"image": data_url(png), "label": 7, "source": "correction"}),
        content_type="application/json",
        REMOTE_ADDR="203.0.113.9",
    ).json()
    assert answer["label"] == 6 and answer["duplicate"] and not answer["relabelled"]
    # once reviewed, not even its sender changes it
    Drawing.objects.update(status=Drawing.Status.APPROVED)
    answer = correct(client, png, 9).json()
    assert answer["label"] == 6 and not answer["relabelled"]
    assert Drawing.objects.get().label == 6


def test_a_digit_drawn_too_small_for_its_pen_is_refused_as_a_blob(client, active_model, pen_digits):
    """A 3 drawn at 13 % of the pad with the page's pen is a blob the model read as
    an 8 with certainty; at a usable size it is read."""
    three = canvas.fit_to_canvas(next(d for d in pen_digits if d.label == 3).strokes)
    points = np.concatenate(three)[:, :2]
    centre, span = (points.min(0) + points.max(0)) / 2, float(np.ptp(points, 0).max())
    tiny = [(s[:, :2] - centre) * (0.13 * 256 / span) + 128 for s in three]
    refused = post(client, "/api/predict/", {"image": data_url(canvas.render_canvas_png(tiny))})
    assert refused.status_code == 400 and refused.json()["code"] == "too_small"
    assert "blob" in refused.json()["error"]
    batch = post(client, "/api/predict/batch/",
                 {"images": [data_url(canvas.render_canvas_png(tiny))]})  # fmt: skip
    assert batch.json()["results"][0]["code"] == "too_small"
    read = post(client, "/api/predict/", {"image": data_url(canvas.render_canvas_png(three))})
    assert read.status_code == 200
