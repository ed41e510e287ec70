"""Imported drawings get the active model's guess, and a promotion re-scores them:
the admin's "model disagrees" filter sees every drawing."""

from __future__ import annotations

import io
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.core.management import call_command

from classifier.registry import BOOTSTRAP_DIR, register_directory
from collector import scoring
from collector.models import Drawing, NewDrawing

from .conftest import instance_env


def test_drawings_without_a_guess_are_scored(active_model, canvas_png):
    for label in range(10):
        Drawing.objects.add(NewDrawing(canvas_png(label), label, source="import:folder"))
    assert not Drawing.objects.filter(predicted_label__isnull=False).exists()
    assert scoring.score() == 10
    drawings = list(Drawing.objects.all())
    for drawing in drawings:
        assert drawing.model_version_id == active_model.pk
        assert 0.0 < drawing.predicted_confidence <= 1.0
    right = sum(d.predicted_label == d.label for d in drawings)
    assert right >= 8, "the stored pictures, read as the page's would be"
    assert scoring.score() == 0, "nothing left to score"


def test_inputs_are_kept_beside_the_drawings_and_read_from_there(
    active_model, canvas_png, monkeypatch
):
    """A contribution's input is kept as it arrives; an import's is made the first
    time something reads it and kept; one made by another preprocessing version is
    made again. Scoring in batches (several here) writes each drawing's own guess."""
    import numpy as np

    from classifier import preprocessing, serving
    from collector import dataset
    from collector.model_inputs import ModelInput

    monkeypatch.setattr(scoring, "BATCH", 4)
    png = canvas_png(4)
    contributed, _ = Drawing.objects.add(
        NewDrawing(png, 4, model_input=preprocessing.to_model_input(png))
    )
    kept = ModelInput.objects.get(drawing=contributed)
    expected = preprocessing.as_bytes(preprocessing.to_model_input(png))
    assert kept.version == preprocessing.PREPROCESSING_VERSION
    assert bytes(kept.pixels) == expected.tobytes()
    imported = [
        Drawing.objects.add(NewDrawing(canvas_png(label, 1), label, source="import:folder"))[0]
        for label in range(10)
    ]
    assert not ModelInput.objects.filter(drawing__in=imported).exists()
    assert scoring.score() == 11
    assert ModelInput.objects.count() == 11
    # the guesses are the model's answers to the kept inputs, drawing by drawing
    rows = list(Drawing.objects.order_by("pk"))
    inputs = np.stack(dataset.model_inputs_of(rows)).astype(np.float32) / 255.0
    verdicts = serving.classify(inputs)
    for drawing, digit, p in zip(rows, verdicts.digits, verdicts.probabilities, strict=True):
        assert drawing.predicted_label == digit
        assert drawing.predicted_confidence == pytest.approx(float(p[digit]), rel=1e-6)
    # read from the table, not the picture: a lost file is still scored
    from django.core.files.storage import default_storage

    default_storage.delete(imported[0].image.name)
    Drawing.objects.update(model_version=None)
    assert scoring.score() == 11
    # an input from another preprocessing version is made again (here it cannot be)
    ModelInput.objects.filter(drawing=imported[0]).update(version=0)
    assert dataset.model_inputs_of([imported[0]]) == [None]
    ModelInput.objects.filter(drawing=imported[1]).update(version=0, pixels=b"")
    [remade] = dataset.model_inputs_of([imported[1]])
    assert (
        ModelInput.objects.get(drawing=imported[1]).version == preprocessing.PREPROCESSING_VERSION
    )
    assert bytes(ModelInput.objects.get(drawing=imported[1]).pixels) == remade.tobytes()


def test_a_promotion_rescores_every_drawing(
    active_model, canvas_png, eager_celery, django_capture_on_commit_callbacks
):
    for label in (3, 8):
        Drawing.objects.add(NewDrawing(canvas_png(label), label, source="import:folder"))
    scoring.score()
    newer = register_directory(BOOTSTRAP_DIR, activate=False, note="newer")
    with django_capture_on_commit_callbacks(execute=True):
        newer.promote(reason="test")
    assert set(Drawing.objects.values_list("model_version_id", flat=True)) == {newer.pk}


def test_the_disagreement_filter_sees_imports(staff_client, active_model, canvas_png):
    Drawing.objects.add(
        NewDrawing(canvas_png(7), 1, source="import:folder")
    )  # mislabelled on import
    scoring.score()
    page = staff_client.get("/admin/collector/drawing/?disagrees=yes")
    assert page.status_code == 200 and b"\xe2\x9a\xa0" in page.content  # the warning mark


def test_an_unreadable_drawing_is_skipped(active_model, canvas_png):
    from django.core.files.storage import default_storage

    broken, _ = Drawing.objects.add(NewDrawing(canvas_png(2), 2, source="import:folder"))
    Drawing.objects.add(NewDrawing(canvas_png(5), 5, source="import:folder"))
    default_storage.delete(broken.image.name)
    assert scoring.score() == 1


@pytest.mark.integration
def test_the_background_worker_scores_an_import(tmp_path, canvas_png):
    """make run's processes for real: the import queues a job, the background worker
    (not the training one) scores with the active model."""
    from .test_public_edge import call, served

    folder = tmp_path / "import"
    for label in (0, 4, 9):
        (folder / str(label)).mkdir(parents=True)
        (folder / str(label) / "a.png").write_bytes(canvas_png(label))
    with served(tmp_path, DIGITS_RUN_WORKER="1") as port:
        env = instance_env(tmp_path / "data")  # the served instance's
        root = Path(__file__).resolve().parent.parent
        out = subprocess.run(
            [sys.executable, str(root / "manage.py"), "import_drawings", "folder", str(folder)],
            env=env, capture_output=True, text=True, check=True,
        )  # fmt: skip
        assert "background worker is scoring" in out.stdout, out.stdout
        check = (
            "from collector.models import Drawing; "
            "print(Drawing.objects.filter(model_version__isnull=False).count())"
        )
        deadline = time.monotonic() + 60
        while True:
            done = subprocess.run(
                [sys.executable, str(root / "manage.py"), "shell", "-c", check],
                env=env, capture_output=True, text=True, check=True,
            )  # fmt: skip
            if done.stdout.splitlines()[-1].strip() == "3":
                break
            assert time.monotonic() < deadline, "the background worker never scored them"
            time.sleep(1)
        assert call(port, "GET", "/api/dataset/stats/")[0] == 200


def test_import_command_scores_in_process_without_a_broker(
    active_model, canvas_png, tmp_path, settings, monkeypatch
):
    from collector import tasks

    monkeypatch.setattr(tasks, "enqueue_scoring", lambda: False)
    (tmp_path / "3").mkdir()
    (tmp_path / "3" / "a.png").write_bytes(canvas_png(3))
    out = io.StringIO()
    call_command("import_drawings", "folder", str(tmp_path), stdout=out)
    assert "scored 1 drawing(s)" in out.getvalue()
    assert Drawing.objects.get().predicted_label == 3
