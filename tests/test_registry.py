"""classifier.registry and the serving runtime: one active version, hot-swapped."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.db import IntegrityError

from classifier import runtime
from classifier.models import ModelVersion
from classifier.registry import BOOTSTRAP_DIR, RegistrationError, register_directory


def test_ensure_model_registers_the_bootstrap_once(db):
    out = io.StringIO()
    call_command("ensure_model", stdout=out)
    call_command("ensure_model", stdout=out)
    assert ModelVersion.objects.count() == 1
    version = ModelVersion.objects.get()
    assert version.is_active and version.tflite.name == "models/v0001/model.tflite"
    assert "registered bootstrap model version 1" in out.getvalue()
    assert "active model version 1" in out.getvalue().splitlines()[-1]


def test_a_fresh_instance_registers_its_model_without_a_broker_warning(db, tmp_path):
    """``make run`` registers the bootstrap before Redis is up: with no drawings
    there is nothing to score, so nothing is queued and nothing warns."""
    import subprocess
    import sys
    from pathlib import Path

    from .conftest import instance_env

    root, env = Path(__file__).resolve().parent.parent, instance_env(tmp_path / "fresh")
    for command in (["migrate", "-v0"], ["ensure_model"]):
        done = subprocess.run([sys.executable, str(root / "manage.py"), *command], env=env,
                              cwd=root, capture_output=True, text=True)  # fmt: skip
        assert done.returncode == 0, done.stderr[-2000:]
    assert "registered bootstrap model" in done.stdout
    assert "Could not queue" not in done.stderr, done.stderr[-2000:]


def test_the_bootstrap_model_meets_the_targets(db):
    """Scored now, from the committed artifact, and equal to what its report says."""
    import json

    from classifier import serving
    from classifier.predictor import Predictor
    from training import evaluation
    from training.sources import mnist as mnist_source
    from training.sources import pendigits as pen_source

    metrics = json.loads((BOOTSTRAP_DIR / "metrics.json").read_text())
    predictor = Predictor(BOOTSTRAP_DIR / "model.tflite")
    measured = {}
    for name, images in (
        ("mnist-test", mnist_source.load_mnist().test),
        ("pendigits", pen_source.pendigits_test_split()),
    ):
        probabilities = serving.classify(images.as_inputs(), predictor).probabilities
        measured[name] = evaluation.classification_report(images.y, probabilities)["accuracy"]
        assert measured[name] == pytest.approx(metrics["tests"][name]["accuracy"], abs=1e-6)
    assert metrics["architecture"] == "digitnet"
    assert measured["mnist-test"] >= 0.996
    assert measured["pendigits"] >= 0.994
    # the world's handwriting: scans of held-out writers, and every trained style
    assert metrics["tests"]["pendigits-scans"]["accuracy"] >= 0.99
    styles = {k: v["accuracy"] for k, v in metrics["tests"].items() if k.startswith("style:")}
    assert len(styles) == 15 and min(styles.values()) >= 0.96
    # confidence people can read: calibrated on validation data, checked on held-out writers
    fitted = metrics["calibration"]
    assert fitted["ece"]["pendigits"]["after"] <= 0.02 < fitted["ece"]["pendigits"]["before"]
    assert (BOOTSTRAP_DIR / "model.tflite").stat().st_size < 2_000_000


def test_the_bootstrap_reads_every_style_as_the_page_sends_it(db):
    """Both views, as the page sends a drawing (its picture and its strokes), scored
    now from the committed artifacts on every style test set, the disjoint bands
    included, and equal to what the report says: at least 98 % on each (a probe,
    kept out of training, is shown, not bound). And the held-out writers, answered
    the same way, as the issue asks of them."""
    import json

    from classifier import combination as combining
    from classifier import pen
    from classifier.predictor import Predictor
    from training.sources import synthetic

    metrics = json.loads((BOOTSTRAP_DIR / "metrics.json").read_text())
    fitted = metrics["pen"]["combination"]
    image = Predictor(
        BOOTSTRAP_DIR / "model.tflite", temperature=metrics["calibration"]["temperature"]
    )
    pen_view = Predictor(BOOTSTRAP_DIR / "pen.tflite", temperature=fitted["pen_temperature"])
    pictures, drawn = synthetic.style_test_sets(), synthetic.style_test_strokes()
    assert set(metrics["pen"]["styles"]) == set(pictures) == set(drawn)
    for name, images in pictures.items():
        p_image = image.predict(images.as_inputs())
        p_pen = pen_view.predict(pen.batch(drawn[name].strokes))
        both = (combining.combine(p_image, p_pen, fitted).argmax(1) == images.y).mean()
        assert round(both, 5) == metrics["pen"]["styles"][name]["combined"]["accuracy"], name
        if not name.startswith("probe:"):
            assert both >= 0.98, name
    served = {name: scores["combined"] for name, scores in metrics["pen"]["tests"].items()}
    assert served["pendigits"]["accuracy"] >= 0.997 and served["ujipen"]["accuracy"] >= 0.99
    # ink that is no digit: the pen makes "sure" rarer than the picture alone makes it
    not_digits = metrics["pen"]["not_digits"]
    assert not_digits["combined_sure"] < not_digits["image_sure"]


def _pen_lifted_at_the_middle(strokes):
    """The drawing with its longest stroke broken in two halfway along its path, as
    a finger that loses the glass or a pen that skips leaves it."""
    import numpy as np

    lengths = [np.hypot(*np.diff(s[:, :2], axis=0).T).sum() for s in strokes]
    i = int(np.argmax(lengths))
    stroke = strokes[i]
    along = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(stroke[:, :2], axis=0).T))])
    k = int(np.searchsorted(along, along[-1] / 2))
    if not 2 <= k <= len(stroke) - 2:
        return strokes
    return [*strokes[:i], stroke[:k], stroke[k:], *strokes[i + 1 :]]


def test_the_bootstrap_reads_held_out_writers_whose_pen_lifts_mid_stroke(db):
    """The held-out writers' digits with the pen lifted once mid-stroke (the longest
    stroke broken in two), sent as the page sends them: both views still meet the
    issue's proxies (pen digits ≥ 99.7 %, UJI ≥ 99 %), and no answer is "sure" and
    wrong. The pen view before it learnt such drawings read the pen digits 99.60 %
    this way (its pen alone 99.27 %)."""
    import json

    import numpy as np

    from classifier import combination as combining
    from classifier import pen
    from classifier.predictor import Predictor
    from training import strokes as stroke_space
    from training.config import TrainConfig
    from training.pen_data import load_pen_data

    metrics = json.loads((BOOTSTRAP_DIR / "metrics.json").read_text())
    fitted = metrics["pen"]["combination"]
    image = Predictor(
        BOOTSTRAP_DIR / "model.tflite", temperature=metrics["calibration"]["temperature"]
    )
    pen_view = Predictor(BOOTSTRAP_DIR / "pen.tflite", temperature=fitted["pen_temperature"])
    tests = load_pen_data(TrainConfig(sources=("mnist", "pendigits"))).tests
    held_out = {name: list(zip(tests[name].strokes, tests[name].y, strict=True)) for name in tests}
    for name, bound in (("pendigits", 0.997), ("ujipen", 0.99)):
        drawings = [_pen_lifted_at_the_middle(strokes) for strokes, _ in held_out[name]]
        labels = np.array([label for _, label in held_out[name]])
        assert sum(
            len(b) > len(s) for b, (s, _) in zip(drawings, held_out[name], strict=True)
        ) == len(labels)
        pictures = np.stack([stroke_space.render(d) for d in drawings]).astype(np.float32)
        p_image = image.predict(pictures / 255.0)
        p_pen = pen_view.predict(pen.batch(drawings))
        both = combining.combine(p_image, p_pen, fitted)
        wrong = both.argmax(1) != labels
        assert 1 - wrong.mean() >= bound, name
        assert not (wrong & combining.sure(p_image, p_pen, both, fitted)).any(), name


def test_only_one_version_is_active(active_model):
    second = register_directory(BOOTSTRAP_DIR, activate=True)
    active_model.refresh_from_db()
    assert second.is_active and not active_model.is_active
    with pytest.raises(IntegrityError):
        ModelVersion.objects.filter(pk=active_model.pk).update(status="active")


def test_serving_swaps_to_a_newly_promoted_version(active_model):
    assert runtime.active_model().version == active_model.version
    second = register_directory(BOOTSTRAP_DIR, activate=True)
    assert runtime.active_model().version == second.version


def test_a_directory_whose_artifact_disagrees_is_refused(tmp_path):
    (tmp_path / "model.tflite").write_bytes((BOOTSTRAP_DIR / "model.tflite").read_bytes())
    (tmp_path / "metrics.json").write_text(
        '{"tflite_agreement": {"mnist-test": {"argmax_identical": false}}}'
    )
    with pytest.raises(RegistrationError, match="disagrees"):
        register_directory(tmp_path, activate=True)


def test_report_plots_are_shown_to_staff_only(client, active_model, django_user_model):
    names = [p.rsplit("/", 1)[-1] for p in active_model.plots]
    assert "confusion-mnist-test.png" in names and "learning-curves.png" in names
    url = f"/models/v{active_model.version}/learning-curves.png"
    assert client.get(url).status_code == 302  # to the admin login
    staff = django_user_model.objects.create_superuser("boss", "b@example.com", "pw-for-tests-only")
    client.force_login(staff)
    response = client.get(url)
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    assert client.get(f"/models/v{active_model.version}/secret.txt").status_code == 404
    page = client.get(f"/admin/classifier/modelversion/{active_model.pk}/change/")
    assert url.encode() in page.content


def test_a_registration_that_fails_leaves_no_stray_artifacts(active_model, settings, monkeypatch):
    from pathlib import Path

    models = Path(settings.MEDIA_ROOT) / "models"
    before = sorted(p.relative_to(models) for p in models.rglob("*") if p.is_file())
    # two registrations racing for the same version number: the database refuses one
    monkeypatch.setattr(ModelVersion, "next_version", classmethod(lambda cls: 1))
    with pytest.raises(IntegrityError):
        register_directory(BOOTSTRAP_DIR, activate=True)
    after = sorted(p.relative_to(models) for p in models.rglob("*") if p.is_file())
    assert after == before and ModelVersion.objects.count() == 1
