"""The pen view: what it reads of the strokes (geometry and order, never timing or
point density), how its answer is combined with the picture's, and the API's
``views``."""

from __future__ import annotations

import io
import json
import re

import numpy as np
import pytest

from classifier import canvas, combination, pen
from training import strokes as stroke_space

from .conftest import data_url


def one(digit) -> list[np.ndarray]:
    return canvas.fit_to_canvas(digit.strokes)


def test_features_have_the_documented_shape_and_mark_each_stroke(pen_digits):
    digit = next(d for d in pen_digits if len(d.strokes) == 2)
    f = pen.features(one(digit))
    assert f.shape == (pen.POINTS, pen.FEATURES) and f.dtype == np.float32
    assert f[:, 4].sum() == 2 and f[0, 4] == 1  # two strokes start
    assert np.abs(f[:, :2]).max() == pytest.approx(1.0)  # the longer side spans -1…1
    assert f[0, 5] == 0 and f[-1, 5] == pytest.approx(1.0)  # how much is drawn so far


def test_point_density_timing_size_and_place_do_not_change_what_the_pen_view_reads(pen_digits):
    strokes = one(pen_digits[7])
    base = pen.features(strokes)
    # a mouse's dense points instead of a tablet's sparse ones
    dense = [stroke_space.resample(s[:, :2], 0.7) for s in strokes]
    assert np.abs(pen.features(dense) - base)[:, :2].max() < 0.02
    # other timestamps (the features never read t)
    timed = [np.column_stack([s[:, :2], np.arange(len(s)) * 97.0]) for s in strokes]
    assert np.array_equal(pen.features(timed), base)
    # half the size, elsewhere on the pad
    moved = [s[:, :2] * 0.5 + 40 for s in strokes]
    assert np.abs(pen.features(moved) - base).max() < 1e-4


def test_the_order_and_direction_of_the_pen_are_read(pen_digits):
    strokes = one(next(d for d in pen_digits if len(d.strokes) == 1))
    backwards = [s[::-1] for s in strokes]
    assert np.abs(pen.features(backwards)[:, 2:4] - pen.features(strokes)[:, 2:4]).max() > 1.0


def test_dots_and_many_strokes_are_read_without_error():
    dots = [np.array([[10.0 * i, 20.0, 0.0]]) for i in range(70)]
    assert np.isfinite(pen.features(dots)).all()
    assert np.isfinite(pen.features([np.array([[5.0, 5.0, 0.0]])])).all()


def _features_stroke_by_stroke(strokes, points=pen.POINTS):
    """The pen view's input written the plain way, one stroke at a time: the oracle
    for ``pen.features``, which resamples every stroke in one pass for speed."""
    paths = [np.asarray(s, float)[:, :2] for s in strokes if len(s)]
    lengths = np.array([np.linalg.norm(np.diff(p, axis=0), axis=1).sum() for p in paths])
    counts = pen._allocate(lengths, points)
    rows, before, total = [], 0.0, float(lengths.sum()) or 1.0
    for path, count, length in zip(paths, counts, lengths, strict=True):
        if count == 0:
            continue
        if count == 1:
            xy = path[len(path) // 2][None]
        elif len(path) == 1 or length <= 0:
            xy = np.repeat(path[:1], count, axis=0)
        else:
            along = np.concatenate(
                [[0.0], np.cumsum(np.linalg.norm(np.diff(path, axis=0), axis=1))]
            )
            where = np.linspace(0.0, length, count)
            xy = np.column_stack([np.interp(where, along, path[:, i]) for i in (0, 1)])
        steps = np.diff(xy, axis=0)
        norms = np.linalg.norm(steps, axis=1, keepdims=True)
        direction = np.zeros((count, 2))
        direction[:-1] = np.divide(steps, norms, out=np.zeros_like(steps), where=norms > 1e-9)
        start = np.zeros(count)
        start[0] = 1.0
        drawn = (before + np.linspace(0.0, length, count)) / total
        rows.append(np.column_stack([xy, direction, start, drawn]))
        before += length
    out = np.concatenate(rows)
    low, high = out[:, :2].min(axis=0), out[:, :2].max(axis=0)
    half = float(max(high - low)) / 2.0 or 1.0
    out[:, :2] = (out[:, :2] - (low + high) / 2.0) / half
    return out.astype(np.float32)


def test_resampling_all_strokes_at_once_reads_as_resampling_each_alone(pen_digits):
    rng = np.random.default_rng(5)
    drawings = [one(d) for d in pen_digits[:40]]
    for _ in range(300):  # dots, still strokes, repeated points, up to 64 strokes
        strokes = []
        for _ in range(int(rng.choice([1, 2, 3, 7, 63, 64]))):
            kind, size = rng.random(), int(rng.integers(2, 40))
            points = rng.random((1 if kind < 0.1 else size, 3)) * 256
            if 0.1 <= kind < 0.2:
                points[:] = points[0]
            elif 0.2 <= kind < 0.3:
                points = np.round(points / 64) * 64
            strokes.append(points)
        drawings.append(strokes)
    for strokes in drawings:
        assert np.allclose(pen.features(strokes), _features_stroke_by_stroke(strokes), atol=1e-6)


def test_the_combination_is_fitted_to_the_view_that_knows():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 400)
    # the picture confuses 1s and 7s; the pen does not
    p_image = np.full((400, 10), 0.01)
    confused = np.where(np.isin(labels, [1, 7]), 8 - labels, labels)
    p_image[np.arange(400), confused] = 0.6
    p_image[np.arange(400), labels] += 0.3
    p_image /= p_image.sum(1, keepdims=True)
    p_pen = np.full((400, 10), 0.02)
    p_pen[np.arange(400), labels] = 0.8
    p_pen /= p_pen.sum(1, keepdims=True)
    fitted = combination.fit(p_image, p_pen, labels)
    assert fitted["pen_weight"] > fitted["image_weight"]
    combined = combination.combine(p_image, p_pen, fitted)
    assert (combined.argmax(1) == labels).mean() == 1.0


def test_the_fit_counts_each_drawing_by_its_weight():
    """Weights are used: a row counted twice weighs what two copies of it weigh."""
    rng = np.random.default_rng(1)
    p_image = rng.dirichlet(np.ones(10) * 0.3, 200)
    p_pen = rng.dirichlet(np.ones(10) * 0.3, 200)
    labels = rng.integers(0, 10, 200)
    weights = np.ones(200)
    weights[:50] = 2.0
    copied = np.r_[np.arange(200), np.arange(50)]
    by_weight = combination.fit(p_image, p_pen, labels, weights)
    by_copies = combination.fit(p_image[copied], p_pen[copied], labels[copied])
    assert (by_weight["image_weight"], by_weight["pen_weight"]) == (
        by_copies["image_weight"],
        by_copies["pen_weight"],
    )
    assert by_weight["nll"] == pytest.approx(by_copies["nll"], abs=1e-4)


def test_ink_that_is_no_digit_keeps_the_combination_from_adding_doubts_to_certainty():
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 10, 300)
    p_image, p_pen = np.full((300, 10), 0.02), np.full((300, 10), 0.02)
    p_image[np.arange(300), labels] = 0.82
    p_pen[np.arange(300), labels] = 0.82
    # no digit: each view leans (60 %) towards some digit, each its own
    lean_image, lean_pen = rng.integers(0, 10, 100), rng.integers(0, 10, 100)
    junk_image, junk_pen = np.full((100, 10), 0.4 / 9), np.full((100, 10), 0.4 / 9)
    junk_image[np.arange(100), lean_image] = 0.6
    junk_pen[np.arange(100), lean_pen] = 0.6
    both_image, both_pen = np.r_[p_image, junk_image], np.r_[p_pen, junk_pen]
    with_junk = np.r_[labels, np.full(100, combination.NO_DIGIT)]
    sharp = combination.fit(p_image, p_pen, labels)
    careful = combination.fit(both_image, both_pen, with_junk)
    assert careful["n"] == 300 and careful["n_no_digit"] == 100
    total = lambda f: f["image_weight"] + f["pen_weight"]  # noqa: E731
    assert total(careful) < total(sharp)  # softer: doubts do not add up to certainty
    assert combination.combine(junk_image, junk_pen, careful).max(1).mean() < (
        combination.combine(junk_image, junk_pen, sharp).max(1).mean()
    )


def test_views_that_disagree_strongly_are_never_sure():
    p_image = np.array([[0.0] * 7 + [0.99] + [0.01] * 2])  # a 7
    p_pen = np.array([[0.0, 0.9] + [0.1 / 8] * 8])  # a 1
    fitted = {"image_weight": 1.0, "pen_weight": 1.0, "threshold": 0.5}
    combined = combination.combine(p_image, p_pen, fitted)
    assert combination.disagree(p_image, p_pen)[0]
    assert not combination.sure(p_image, p_pen, combined, fitted)[0]


def test_strokes_that_trace_another_picture_do_not_agree_with_it(canvas_png, pen_digits):
    from classifier import preprocessing

    ones = [d for d in pen_digits if d.label == 1][:5]
    sevens = [d for d in pen_digits if d.label == 7][:5]
    for a, b in zip(ones, sevens, strict=True):
        own = canvas.fit_to_canvas(a.strokes)
        ink = preprocessing.decode_ink(canvas.render_canvas_png(own))
        assert canvas.strokes_agree(own, ink)
        assert not canvas.strokes_agree(canvas.fit_to_canvas(b.strokes), ink)


@pytest.fixture
def picture_only_version(db, tmp_path):
    """A version from before the pen view: the bootstrap's image model alone."""
    import shutil

    from classifier.registry import BOOTSTRAP_DIR, register_directory

    folder = tmp_path / "picture-only"
    shutil.copytree(BOOTSTRAP_DIR, folder)
    for name in ("pen.tflite", "pen.keras"):
        (folder / name).unlink(missing_ok=True)
    metrics = json.loads((folder / "metrics.json").read_text())
    metrics.pop("pen", None)
    (folder / "metrics.json").write_text(json.dumps(metrics))
    return register_directory(folder, activate=True, note="picture only")


def test_without_a_pen_view_the_answer_says_it_read_the_picture(
    client, picture_only_version, pen_digits
):
    strokes = canvas.strokes_as_json(canvas.timed(one(pen_digits[3])))
    png = canvas.render_canvas_png(canvas.parse_strokes(strokes))
    for body in ({"image": data_url(png)}, {"image": data_url(png), "strokes": strokes}):
        response = client.post("/api/predict/", json.dumps(body), content_type="application/json")
        assert response.status_code == 200 and response.json()["views"] == ["image"]


@pytest.fixture
def pen_version(db, tmp_path):
    """The bootstrap model with a pen view beside it (untrained: these tests are
    about which views answer, not how well)."""
    import shutil

    from classifier.registry import BOOTSTRAP_DIR, register_directory
    from training import pen_view
    from training.trainer import export_tflite

    folder = tmp_path / "with-pen"
    shutil.copytree(BOOTSTRAP_DIR, folder)
    for name in ("pen.tflite", "pen.keras"):
        (folder / name).unlink(missing_ok=True)
    export_tflite(pen_view.architecture(), folder / "pen.tflite")
    metrics = json.loads((folder / "metrics.json").read_text())
    metrics["pen"] = {
        "combination": {
            "image_weight": 1.0, "pen_weight": 1.0, "threshold": 0.5, "pen_temperature": 1.0
        }
    }  # fmt: skip
    (folder / "metrics.json").write_text(json.dumps(metrics))
    return register_directory(folder, activate=True, note="with a pen view")


def predict(client, body: dict):
    return client.post("/api/predict/", json.dumps(body), content_type="application/json")


def test_strokes_that_draw_the_picture_are_read_by_both_views(client, pen_version, pen_digits):
    strokes = canvas.strokes_as_json(canvas.timed(one(pen_digits[3])))
    png = canvas.render_canvas_png(canvas.parse_strokes(strokes))
    both = predict(client, {"image": data_url(png), "strokes": strokes})
    assert both.status_code == 200 and both.json()["views"] == ["image", "pen"]
    alone = predict(client, {"image": data_url(png)})
    assert alone.json()["views"] == ["image"]
    assert alone.json()["probabilities"] != both.json()["probabilities"]


def test_a_ones_picture_with_a_sevens_strokes_is_read_from_the_picture_alone(
    client, pen_version, pen_digits
):
    one_digit = next(d for d in pen_digits if d.label == 1)
    seven = next(d for d in pen_digits if d.label == 7)
    png = canvas.render_canvas_png(one(one_digit))
    strokes = canvas.strokes_as_json(canvas.timed(one(seven)))
    answer = predict(client, {"image": data_url(png), "strokes": strokes})
    assert answer.status_code == 200
    assert answer.json()["views"] == ["image"]
    assert answer.json() == {**predict(client, {"image": data_url(png)}).json()}


def test_the_part_of_the_pad_with_ink_is_answered_as_the_whole_pad(client, pen_version, pen_digits):
    """The page sends only the part of its pad with ink and where it lies: the
    answer is the whole canvas's, bit for bit, with the pen and without it, for
    digits drawn anywhere on the pad (edges included)."""
    from classifier import preprocessing

    for index, digit in enumerate(pen_digits[:12]):
        drawn = canvas.fit_to_canvas(digit.strokes, size=100 + 8 * index)
        shift = (-40 + 8 * index, 30 - 6 * index)  # off centre, some clipped by the edge
        drawn = [np.add(s, shift) for s in drawn]
        strokes = canvas.strokes_as_json(canvas.timed(drawn))
        parsed = canvas.parse_strokes(strokes)
        whole = canvas.render_canvas_png(parsed)
        piece, placement = canvas.render_canvas_piece(parsed)
        ink = preprocessing.decode_ink(piece)
        assert ink.shape[0] * ink.shape[1] < 256 * 256
        placed = canvas.place(ink, tuple(placement[k] for k in ("left", "top", "width", "height")))
        assert np.array_equal(placed, preprocessing.decode_ink(whole))
        for extra in ({"strokes": strokes}, {}):
            as_piece = predict(client, {"image": data_url(piece), "canvas": placement, **extra})
            as_whole = predict(client, {"image": data_url(whole), **extra})
            assert as_piece.status_code == 200, as_piece.json()
            assert as_piece.json() == as_whole.json()
    # a dot in a corner of the pad is still a dot on the pad, not a digit filling a piece
    dot = [np.array([[20.0, 20.0, 0.0], [22.0, 21.0, 10.0]])]
    piece, placement = canvas.render_canvas_piece(dot)
    refused = predict(client, {"image": data_url(piece), "canvas": placement})
    assert refused.status_code == 400 and refused.json()["code"] == "too_small"


@pytest.mark.parametrize(
    ("placement", "code"),
    [
        ({"left": 0, "top": 0, "width": 256}, "invalid_canvas"),
        ({"left": "0", "top": 0, "width": 256, "height": 256}, "invalid_canvas"),
        ({"left": 0.5, "top": 0, "width": 256, "height": 256}, "invalid_canvas"),
        ([0, 0, 256, 256], "invalid_canvas"),
        ({"left": 250, "top": 0, "width": 256, "height": 256}, "undecodable_image"),
        ({"left": -1, "top": 0, "width": 256, "height": 256}, "undecodable_image"),
        ({"left": 0, "top": 0, "width": 100_000, "height": 100_000}, "undecodable_image"),
    ],
)
def test_a_placement_that_is_not_one_is_refused_with_a_reason(client, db, placement, code):
    from classifier.registry import ensure_active_model

    ensure_active_model()
    piece, _ = canvas.render_canvas_piece([np.array([[100.0, 60.0, 0], [120.0, 200.0, 9]])])
    answer = predict(client, {"image": data_url(piece), "canvas": placement})
    assert answer.status_code == 400 and answer.json()["code"] == code, answer.json()
    assert answer.json()["error"]


def test_the_batch_endpoint_reads_strokes_item_by_item(client, pen_version, pen_digits):
    drawn = [canvas.strokes_as_json(canvas.timed(one(d))) for d in pen_digits[:3]]
    images = [data_url(canvas.render_canvas_png(canvas.parse_strokes(s))) for s in drawn]
    body = {"images": images, "strokes": [drawn[0], None, [[["x"]]]]}
    response = client.post("/api/predict/batch/", json.dumps(body), content_type="application/json")
    assert response.status_code == 200
    first, second, third = response.json()["results"]
    assert first["views"] == ["image", "pen"] and second["views"] == ["image"]
    assert third["code"] == "invalid_strokes"
    uneven = client.post("/api/predict/batch/", json.dumps({"images": images, "strokes": [None]}),
                         content_type="application/json")  # fmt: skip
    assert uneven.status_code == 400 and "one item" in uneven.json()["error"]


VIEWS = ("image", "pen", "combined")


def test_the_version_page_shows_each_view_and_both(admin_client, pen_version):
    pen_version.metrics["pen"]["tests"] = {
        "ujipen": {
            "n": 400,
            "image": {"accuracy": 0.9975, "sure_but_wrong": 0.0025, "misreads_flagged": 0.0},
            "pen": {"accuracy": 0.995, "sure_but_wrong": 0.0, "misreads_flagged": 1.0},
            "combined": {"accuracy": 0.9975, "sure_but_wrong": 0.0, "misreads_flagged": 1.0},
        }
    }
    pen_version.metrics["pen"]["styles"] = {
        "disjoint:barred-zero": {
            "n": 156,
            **{
                view: {"accuracy": a} for view, a in zip(VIEWS, (0.417, 0.885, 0.9872), strict=True)
            },
        }
    }
    pen_version.metrics["pen"].update(epochs=16, started_from="new weights", n_train=6000)
    pen_version.save()
    page = admin_client.get(f"/admin/classifier/modelversion/{pen_version.pk}/change/")
    html = page.content.decode()
    assert page.status_code == 200
    assert 'data-test="ujipen"' in html and "99.75 %" in html and "99.50 %" in html
    assert "log p(pen)" in html
    # the served answer first (a phone shows it without scrolling), then each view alone
    style = html[html.index('data-style="disjoint:barred-zero"') :].split("</tr>")[0]
    assert re.findall(r"[\d.]+ %", style) == ["98.72 %", "41.70 %", "88.50 %"]
    test = html[html.index('data-test="ujipen"') :].split("</tr>")[0]
    assert re.findall(r"[\d.]+ %", test)[::2] == ["99.75 %", "99.75 %", "99.50 %"]
    assert "400 drawings" in test


def test_what_the_pen_view_learns_as_no_digit_is_ink_but_no_digit(pen_digits):
    from training import pen_data

    digits = pen_data.PenSet()
    for digit in pen_digits[:50]:
        digits.add(one(digit), digit.label)
    rng = np.random.default_rng(3)
    made = [pen_data.junk_strokes(rng, digits) for _ in range(200)]
    assert all(made) and all(len(s) >= 1 and np.isfinite(s).all() for d in made for s in d)
    for drawing in made:
        # never a straight, upright stroke alone (that is a 1)
        points = np.concatenate(drawing)
        path = sum(np.linalg.norm(np.diff(s, axis=0), axis=1).sum() for s in drawing)
        straight = len(drawing) == 1 and np.linalg.norm(points[-1] - points[0]) > 0.9 * path
        if straight and path > 0:
            dx, dy = np.abs(points[-1] - points[0])
            assert dx > 0.5 * dy, drawing
    assert np.isfinite(pen.batch(made)).all()


def test_a_pen_lifted_mid_stroke_breaks_one_stroke_in_two_in_order(pen_digits):
    """What the pen view trains on when a finger loses the glass: one stroke becomes
    two, drawn in the same order and direction, with nothing added."""
    from training import pen_data

    rng = np.random.default_rng(5)
    for digit in pen_digits[:300]:
        strokes = [s[:, :2] for s in one(digit)]
        broken = pen_data.lifted(strokes, rng)
        if not any(len(s) >= 6 for s in strokes):
            assert broken == strokes
            continue
        assert len(broken) == len(strokes) + 1
        i = next(
            i
            for i, (a, b) in enumerate(zip(strokes, broken[: len(strokes)], strict=True))
            if len(a) != len(b)
        )
        first, second = broken[i], broken[i + 1]
        assert len(first) >= 2 and len(second) >= 2
        source = strokes[i]
        # both parts are the stroke's own points, in its order: the first its start,
        # the second a later stretch up to its end (a short piece may be skipped)
        assert np.array_equal(first, source[: len(first)])
        assert np.array_equal(second, source[len(source) - len(second) :])
        assert len(first) + len(second) <= len(source)
        others = broken[:i] + broken[i + 2 :]
        assert all(a is b for a, b in zip(strokes[:i] + strokes[i + 1 :], others, strict=True))


def test_backups_and_the_storage_check_know_the_pen_artifacts(pen_version):
    from operations import backups, integrity

    pen_files = {pen_version.pen_tflite.name}
    assert pen_files <= set(backups.stored_names())
    assert pen_files <= integrity._referenced()
    assert pen_files <= pen_version.artifact_names()


@pytest.mark.slow
def test_a_version_gains_a_pen_view_and_its_picture_answers_stay(tmp_path):
    import shutil

    from django.core.management import call_command

    from classifier.predictor import Predictor
    from classifier.registry import BOOTSTRAP_DIR

    folder = tmp_path / "older"
    shutil.copytree(BOOTSTRAP_DIR, folder)
    for name in ("pen.tflite", "pen.keras"):
        (folder / name).unlink()
    metrics = json.loads((folder / "metrics.json").read_text())
    metrics.pop("pen")
    (folder / "metrics.json").write_text(json.dumps(metrics))
    image = (folder / "model.tflite").read_bytes()
    out = io.StringIO()
    call_command("add_pen_view", str(folder), "--epochs", "1", stdout=out)
    assert (folder / "model.tflite").read_bytes() == image  # the picture's model is kept
    assert Predictor(folder / "pen.tflite").reads_pen
    pen_metrics = json.loads((folder / "metrics.json").read_text())["pen"]
    assert pen_metrics["epochs"] == 1 and {"pendigits", "ujipen"} <= set(pen_metrics["tests"])
    assert "combination" in out.getvalue()
    # and every style test set was answered as the page sends it, picture and strokes:
    # the same drawings the picture's style sets hold (its figure there is theirs)
    from training.sources.synthetic import style_test_sets

    sets = style_test_sets()
    assert set(pen_metrics["styles"]) == set(sets)
    temperature = metrics["calibration"]["temperature"]
    picture = Predictor(folder / "model.tflite", temperature=temperature)
    for name in ("style:barred-zero", "disjoint:continental-one-both"):
        scored = pen_metrics["styles"][name]
        read = (picture.predict(sets[name].as_inputs()).argmax(1) == sets[name].y).mean()
        assert scored["n"] == len(sets[name]) and scored["image"]["accuracy"] == round(read, 5)
        assert 0 <= scored["pen"]["accuracy"] <= 1 and 0 <= scored["combined"]["accuracy"] <= 1
    assert "the weakest with both views is" in out.getvalue()


@pytest.mark.slow
def test_a_fine_tune_of_the_pen_view_keeps_what_it_reads(tmp_path):
    """The loop's retrain of the pen view, from the committed bootstrap's, with no
    contribution to learn: three epochs must not unlearn what it reads. At the new
    weights' rate they did (no-digit ink "sure" with both views 1.5 → 3.0 %, the
    weakest style 99.4 → 98.1 %); at the fine-tune's rate it keeps the issue's
    proxies and makes ink that is no digit "sure" no more often, give or take a
    point (the gate's minimum effect on synthetic sets)."""
    import dataclasses
    import shutil

    from classifier.registry import BOOTSTRAP_DIR
    from training import pen_view
    from training.config import DEFAULTS
    from training.trainer import export_tflite

    folder = tmp_path / "fine-tuned"
    shutil.copytree(BOOTSTRAP_DIR, folder)
    metrics = json.loads((BOOTSTRAP_DIR / "metrics.json").read_text())
    config = dataclasses.replace(DEFAULTS, sources=("mnist", "pendigits"), epochs=3)
    tuned, _ = pen_view.train_view(
        config,
        folder,
        folder / "model.tflite",
        metrics["calibration"]["temperature"],
        initial=BOOTSTRAP_DIR / "pen.keras",
        log=lambda line: None,
        export=export_tflite,
    )
    assert tuned["learning_rate"] == pen_view.FINETUNE_LEARNING_RATE < pen_view.LEARNING_RATE
    assert tuned["epochs"] == pen_view.EPOCHS_FINETUNE
    before = metrics["pen"]["not_digits"]["combined_sure"]
    assert tuned["not_digits"]["combined_sure"] < before + 0.01
    assert tuned["tests"]["pendigits"]["combined"]["accuracy"] >= 0.997
    assert tuned["tests"]["ujipen"]["combined"]["accuracy"] >= 0.99
    taught = {k: v for k, v in tuned["styles"].items() if not k.startswith("probe:")}
    assert min(v["combined"]["accuracy"] for v in taught.values()) >= 0.98


def test_the_gate_judges_the_style_sets_as_the_page_sends_them(tmp_path, db):
    """The pen view's run hands the style sets, with their strokes, to the gate:
    answered by both views they pool into ``styles+pen``, judged apart from the
    pictures' ``styles``."""
    import dataclasses

    from classifier.predictor import Predictor
    from classifier.registry import BOOTSTRAP_DIR
    from training import gate, opinions, pen_view
    from training.config import DEFAULTS
    from training.trainer import export_tflite

    metrics = json.loads((BOOTSTRAP_DIR / "metrics.json").read_text())
    temperature = metrics["calibration"]["temperature"]
    config = dataclasses.replace(DEFAULTS, epochs=1, limit=12, sources=("pendigits",))
    fitted, data = pen_view.train_view(
        config, tmp_path, BOOTSTRAP_DIR / "model.tflite", temperature, log=lambda _: None,
        export=export_tflite,
    )  # fmt: skip
    assert {"style:barred-zero", "disjoint:barred-zero", "pendigits"} <= set(data.tests)
    assert len(data.tests["style:barred-zero"]) == 12
    assert set(fitted["styles"]) == {n for n in data.tests if ":" in n}
    sets = opinions.test_sets({}, data.tests)
    image = Predictor(BOOTSTRAP_DIR / "model.tflite", temperature=temperature)
    pen_model = Predictor(
        tmp_path / "pen.tflite", temperature=fitted["combination"]["pen_temperature"]
    )
    served = opinions.answered(image, pen_model, fitted["combination"], sets)
    truth = {name: drawn.labels() for name, drawn in sets.items()}
    decision = gate.decide(truth, served, served)
    pooled = {v.name: v for v in decision.sets if v.role == gate.SYNTHETIC}
    styles = [n for n in sets if n.startswith("style:")]
    assert set(pooled) == {gate.STYLES_SERVED} and pooled[gate.STYLES_SERVED].judged
    assert pooled[gate.STYLES_SERVED].n == 12 * len(styles) and decision.passed


def as_the_page_sends(strokes: list[np.ndarray]) -> dict:
    drawn = canvas.strokes_as_json(canvas.timed([np.asarray(s, float) for s in strokes]))
    return {
        "image": data_url(canvas.render_canvas_png(canvas.parse_strokes(drawn))),
        "strokes": drawn,
    }


@pytest.mark.parametrize(
    "mark",
    [
        [[80.0, 60.0], [200.0, 200.0]],  # "\": once "an 8, 99.9 %"
        [[200.0, 60.0], [80.0, 200.0]],  # "/"
        [[70.0, 140.0], [190.0, 142.0]],  # a dash
    ],
)
def test_a_single_slanted_stroke_or_a_dash_is_never_sure(client, active_model, mark):
    """The issue's own examples, sent as the page sends them to the served bootstrap."""
    answer = predict(client, as_the_page_sends([np.array(mark)]))
    assert answer.status_code == 200 and answer.json()["views"] == ["image", "pen"]
    assert answer.json()["sure"] is False, answer.json()


def test_a_three_drawn_small_with_the_pages_pen_is_not_read_as_an_eight(
    client, active_model, pen_digits
):
    """Once "8, 99.9 %": held-out writers' 3s drawn 40 and 60 px tall with the page's
    16 px pen (a blot when small) are read as 3s, or refused as too small."""
    from training.sources import pendigits as pen_source

    threes = [
        d for d in pen_digits if d.label == 3 and d.writer in pen_source.PENDIGITS_TEST_WRITERS
    ]
    said = []
    for digit in threes[:12]:
        for size in (40, 60):
            answer = predict(client, as_the_page_sends(canvas.fit_to_canvas(digit.strokes, size)))
            if answer.status_code == 400:
                assert answer.json()["code"] == "too_small"
                continue
            said.append(answer.json()["digit"])
    assert len(said) >= 18 and set(said) == {3}, said
