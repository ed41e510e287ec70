"""Keeping the pen: strict stroke checks, storage with the drawing, ndjson and zip
round trips, and the UNIPEN importer keeping strokes."""

from __future__ import annotations

import io
import json
import math
import zipfile

import numpy as np
import pytest
from django.core.files.storage import default_storage

from classifier import canvas
from collector import exports, imports
from collector.formats import digits_zip, unipen
from collector.models import Drawing, NewDrawing

from .conftest import data_url


def pen_strokes(digit) -> list:
    """A real pen digit as the page would record it."""
    return canvas.strokes_as_json(canvas.timed(canvas.fit_to_canvas(digit.strokes), 8))


def test_strokes_as_the_page_records_them_are_accepted(pen_digits):
    strokes = pen_strokes(pen_digits[0])
    parsed = canvas.parse_strokes(strokes)
    assert [len(s) for s in parsed] == [len(s) for s in strokes]
    assert all(s.shape[1] == 3 and s.dtype == np.float64 for s in parsed)


@pytest.mark.parametrize(
    ("strokes", "says"),
    [
        ("[[1, 2, 0]]", "non-empty list of strokes"),
        ([], "non-empty list of strokes"),
        ([[]], "non-empty list of [x, y, t] points"),
        ([[[1, 2]]], "[x, y, t]"),
        ([[[1, 2, 3, 4]]], "[x, y, t]"),
        ([[["1", 2, 0]]], "three finite numbers"),
        ([[[True, 2, 0]]], "three finite numbers"),
        ([[[None, 2, 0]]], "three finite numbers"),
        ([[[math.nan, 2, 0]]], "three finite numbers"),
        ([[[math.inf, 2, 0]]], "three finite numbers"),
        ([[[10**400, 2, 0]]], "three finite numbers"),
        ([[[1, 2, 0], 5]], "three finite numbers"),
        ([[[400, 2, 0]]], "on the 256×256 canvas"),
        ([[[-40, 2, 0]]], "on the 256×256 canvas"),
        ([[[1, 2, 10], [3, 4, 5]]], "never going back"),
        ([[[1, 2, 10]], [[3, 4, 5]]], "never going back"),
        ([[[1, 2, -1]]], "never going back"),
        ([[[1, 2, 0]]] * 65, "At most 64 strokes"),
        ([[[1, 2, 0]] * 2001], "at most 2000"),
        ([[[1, 2, 0]] * 1500] * 6, "At most 8000 points"),
    ],
)
def test_bad_strokes_are_refused_saying_what_is_wrong(strokes, says):
    with pytest.raises(canvas.InvalidStrokes, match=None) as caught:
        canvas.parse_strokes(strokes)
    assert says in str(caught.value)


@pytest.mark.django_db
def test_a_contribution_keeps_its_strokes_in_the_same_row(client, pen_digits, active_model):
    # given a drawing and the strokes that made it
    strokes = pen_strokes(pen_digits[3])
    png = canvas.render_canvas_png(canvas.parse_strokes(strokes))
    # when contributed
    response = client.post(
        "/api/drawings/",
        json.dumps({"image": data_url(png), "label": pen_digits[3].label, "strokes": strokes}),
        content_type="application/json",
    )
    # then the row holds them exactly as sent
    assert response.status_code == 201, response.content
    assert Drawing.objects.get(pk=response.json()["id"]).strokes == strokes


@pytest.mark.django_db
@pytest.mark.parametrize("form", ["json", "multipart"])
@pytest.mark.parametrize("endpoint", ["/api/drawings/", "/api/predict/"])
def test_a_400_digit_number_in_strokes_is_a_400(client, canvas_png, active_model, endpoint, form):
    huge = "[[[" + "9" * 400 + ", 2, 0]]]"  # JSON numbers have no size limit
    if form == "json":
        body = (
            json.dumps({"image": data_url(canvas_png(4)), "label": 4})[:-1]
            + f', "strokes": {huge}}}'
        )
        response = client.post(endpoint, body, content_type="application/json")
    else:
        body = {"image": io.BytesIO(canvas_png(4)), "label": "4", "strokes": huge}
        response = client.post(endpoint, body)
    assert response.status_code == 400 and response.json()["code"] == "invalid_strokes"
    assert Drawing.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize("endpoint", ["/api/drawings/", "/api/predict/"])
def test_bad_strokes_are_a_400_and_nothing_is_stored(client, canvas_png, active_model, endpoint):
    files_before = (
        default_storage.listdir("drawings")[0] if default_storage.exists("drawings") else []
    )
    response = client.post(
        endpoint,
        json.dumps({"image": data_url(canvas_png(4)), "label": 4, "strokes": [[[1, 2]]]}),
        content_type="application/json",
    )
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_strokes"
    assert "[x, y, t]" in response.json()["error"]
    assert Drawing.objects.count() == 0
    after = default_storage.listdir("drawings")[0] if default_storage.exists("drawings") else []
    assert after == files_before


@pytest.mark.django_db
def test_predict_takes_good_strokes_beside_the_image(client, pen_digits, active_model):
    strokes = pen_strokes(pen_digits[5])
    png = canvas.render_canvas_png(canvas.parse_strokes(strokes))
    response = client.post(
        "/api/predict/",
        json.dumps({"image": data_url(png), "strokes": strokes}),
        content_type="application/json",
    )
    assert response.status_code == 200
    assert response.json()["digit"] == pen_digits[5].label


@pytest.mark.django_db
def test_multipart_uploads_may_send_strokes_as_json_text(client, pen_digits, active_model):
    strokes = pen_strokes(pen_digits[6])
    png = canvas.render_canvas_png(canvas.parse_strokes(strokes))
    response = client.post(
        "/api/drawings/",
        {
            "image": io.BytesIO(png),
            "label": str(pen_digits[6].label),
            "strokes": json.dumps(strokes),
        },
    )
    assert response.status_code == 201, response.content
    assert Drawing.objects.get().strokes == strokes
    broken = client.post(
        "/api/drawings/", {"image": io.BytesIO(png), "label": "1", "strokes": "[[[1, 2"}
    )
    assert broken.status_code == 400 and broken.json()["code"] == "invalid_strokes"


@pytest.fixture
def unipen_file(tmp_path, pen_digits):
    path = tmp_path / "few.txt"
    path.write_text(unipen.to_text(pen_digits[:12]))
    return path


@pytest.mark.django_db
def test_the_unipen_importer_keeps_the_strokes_it_draws(unipen_file, pen_digits):
    summary = imports.run_import(imports.pendigits_items(unipen_file), status="approved")
    assert summary.added == 12
    for drawing in Drawing.objects.order_by("id"):
        strokes = canvas.parse_strokes(drawing.strokes)
        # the stored picture is exactly the stored strokes drawn as the canvas draws them
        with default_storage.open(drawing.image.name, "rb") as handle:
            assert handle.read() == canvas.render_canvas_png(strokes)


@pytest.mark.django_db
def test_ndjson_round_trip_keeps_everything(unipen_file, tmp_path):
    # given drawings with strokes, labels, splits and statuses
    imports.run_import(imports.pendigits_items(unipen_file), status="approved")
    Drawing.objects.filter(pk=Drawing.objects.first().pk).update(status="rejected")
    before = {
        d.sha256: (d.label, d.split, d.status, d.source, d.writer, d.strokes)
        for d in Drawing.objects.all()
    }
    # when exported as ndjson, the dataset emptied, and the file imported again
    path = tmp_path / "drawings.ndjson"
    assert exports.export(path, "ndjson") == 12
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert set(lines[0]) == {"sha256", "label", "split", "status", "source", "writer", "strokes"}
    for drawing in Drawing.objects.all():
        drawing.delete()
    summary = imports.run_import(imports.ndjson_items(path), status=None)
    # then every drawing is back: same pixels (same hash), labels, splits, statuses, strokes
    assert summary.added == 12, summary.line()
    after = {
        d.sha256: (d.label, d.split, d.status, d.source, d.writer, d.strokes)
        for d in Drawing.objects.all()
    }
    assert after == before


@pytest.mark.django_db
def test_ndjson_import_reads_quickdraw_layout_and_refuses_bad_lines(tmp_path, pen_digits):
    strokes = pen_strokes(pen_digits[1])
    quickdraw = [[[p[0] for p in s], [p[1] for p in s], [p[2] for p in s]] for s in strokes]
    path = tmp_path / "mixed.ndjson"
    path.write_text(
        "\n".join(
            [
                json.dumps({"word": str(pen_digits[1].label), "drawing": quickdraw}),
                "not json",
                json.dumps({"label": 3}),
                json.dumps({"label": 3, "strokes": [[[900, 1, 0]]]}),
                json.dumps({"label": "x", "strokes": strokes}),
            ]
        )
    )
    summary = imports.run_import(imports.ndjson_items(path), status="pending")
    assert summary.added == 1 and sum(summary.refused.values()) == 4, summary.line()
    drawing = Drawing.objects.get()
    assert drawing.label == pen_digits[1].label and drawing.strokes == strokes
    reasons = " ".join(summary.refused)
    assert "line 2" in reasons and "line 3: no strokes" in reasons and "canvas" in reasons


@pytest.mark.django_db
def test_the_zip_export_carries_the_strokes(unipen_file, tmp_path):
    imports.run_import(imports.pendigits_items(unipen_file), status="approved")
    before = {d.sha256: d.strokes for d in Drawing.objects.all()}
    path = tmp_path / "backup.zip"
    exports.export(path, "zip")
    with zipfile.ZipFile(path) as archive:
        assert digits_zip.STROKES_FILE in archive.namelist()
    for drawing in Drawing.objects.all():
        drawing.delete()
    summary = imports.run_import(imports.zip_items(path), status=None)
    assert summary.added == 12
    assert {d.sha256: d.strokes for d in Drawing.objects.all()} == before


@pytest.mark.django_db
def test_a_duplicate_picture_gains_strokes_it_lacked(pen_digits, active_model):

    strokes = canvas.parse_strokes(pen_strokes(pen_digits[2]))
    png = canvas.render_canvas_png(strokes)
    first, created = Drawing.objects.add(NewDrawing(png, pen_digits[2].label))
    assert created and first.strokes is None
    again, created = Drawing.objects.add(NewDrawing(png, pen_digits[2].label, strokes=strokes))
    assert not created and again.pk == first.pk
    assert again.strokes == canvas.strokes_as_json(strokes)
