"""Strokes belong to their picture: a contribution's strokes must draw the picture
they came with, and strokes are never added to someone else's drawing or to one
staff already reviewed (they decide how a drawing is varied for training)."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from django.core.files.storage import default_storage

from classifier import canvas, preprocessing
from collector.models import Drawing, NewDrawing

from .conftest import data_url
from .test_strokes import pen_strokes

pytestmark = pytest.mark.django_db


def digit(unseen_pen_digits, label: int, index: int = 0):
    return [d for d in unseen_pen_digits if d.label == label][index]


def test_the_same_drawing_agrees_and_another_digit_does_not(unseen_pen_digits):
    one = canvas.parse_strokes(pen_strokes(digit(unseen_pen_digits, 1)))
    seven = canvas.parse_strokes(pen_strokes(digit(unseen_pen_digits, 7)))
    picture = preprocessing.decode_ink(canvas.render_canvas_png(one))
    canvas.check_strokes_match(one, picture)
    # a few pixels off (the page's own rendering) is the same drawing
    canvas.check_strokes_match([s + np.array([3, -3, 0]) for s in one], picture)
    with pytest.raises(canvas.StrokesDoNotMatch):
        canvas.check_strokes_match(seven, picture)


@pytest.mark.parametrize("form", ["json", "multipart"])
def test_a_ones_picture_with_a_sevens_strokes_is_refused(client, unseen_pen_digits, active_model,
                                                         form):  # fmt: skip
    # given the picture of a 1 and the strokes of a 7
    one = pen_strokes(digit(unseen_pen_digits, 1))
    seven = pen_strokes(digit(unseen_pen_digits, 7))
    png = canvas.render_canvas_png(canvas.parse_strokes(one))
    # when contributed together
    if form == "json":
        body = {"image": data_url(png), "label": 1, "strokes": seven}
        response = client.post("/api/drawings/", json.dumps(body), content_type="application/json")
    else:
        body = {"image": io.BytesIO(png), "label": "1", "strokes": json.dumps(seven)}
        response = client.post("/api/drawings/", body)
    # then it is a 400 that says why, and nothing is stored
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "strokes_do_not_match"
    assert Drawing.objects.count() == 0
    assert not default_storage.exists("drawings") or default_storage.listdir("drawings")[0] == []


def test_an_approved_drawing_never_takes_a_strangers_strokes(client, unseen_pen_digits,
                                                             active_model):  # fmt: skip
    # given an approved drawing of a 1 that was stored without strokes
    one = digit(unseen_pen_digits, 1, 1)
    own = pen_strokes(one)
    png = canvas.render_canvas_png(canvas.parse_strokes(own))
    stored, _ = Drawing.objects.add(NewDrawing(png, 1, status="approved", client="addr:first"))
    # when an anonymous client sends the same bytes, first with a 7's strokes, then
    # with strokes that do draw it
    seven = pen_strokes(digit(unseen_pen_digits, 7, 1))
    refused = client.post(
        "/api/drawings/",
        json.dumps({"image": data_url(png), "label": 1, "strokes": seven}),
        content_type="application/json",
    )
    again = client.post(
        "/api/drawings/",
        json.dumps({"image": data_url(png), "label": 1, "strokes": own}),
        content_type="application/json",
    )
    # then the mismatch is refused, the duplicate is answered as one, and the
    # approved row keeps no strokes from anyone else
    assert refused.status_code == 400 and again.status_code == 200, again.content
    assert again.json()["duplicate"]
    stored.refresh_from_db()
    assert stored.strokes is None and stored.status == "approved"


def test_a_contributors_own_pending_drawing_gains_its_strokes(unseen_pen_digits):
    strokes = canvas.parse_strokes(pen_strokes(digit(unseen_pen_digits, 4)))
    png = canvas.render_canvas_png(strokes)
    first, _ = Drawing.objects.add(NewDrawing(png, 4, client="addr:me"))
    Drawing.objects.add(NewDrawing(png, 4, client="addr:someone-else", strokes=strokes))
    first.refresh_from_db()
    assert first.strokes is None  # not from someone else
    Drawing.objects.add(NewDrawing(png, 4, client="addr:me", strokes=strokes))
    first.refresh_from_db()
    assert first.strokes == canvas.strokes_as_json(strokes)  # from its sender, still pending
