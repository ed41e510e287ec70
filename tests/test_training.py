"""training.trainer, training.config and the run's data: on tiny data (seconds, not minutes)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from collector.models import Drawing, NewDrawing
from training.config import TrainConfig
from training.sources import load_training_data, synthetic
from training.sources import pendigits as pen_source
from training.trainer import train


@pytest.mark.slow
def test_training_learns_and_writes_a_complete_model_directory(tmp_path, tiny_mnist):
    # given 3,000 MNIST digits and a small model
    config = TrainConfig(architecture="mlp", epochs=4, batch_size=64, augment=False)
    # when trained
    result = train(config, tmp_path / "run", verbose=0, data=tiny_mnist)
    # then it learned (chance is 10 %), and everything a model version needs is there
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["tests"]["mnist-test"]["accuracy"] > 0.8
    assert metrics["tests"]["mnist-test"]["n"] == 1000
    for name in (
        "model.keras",
        "model.tflite",
        "learning-curves.png",
        "confusion-mnist-test.png",
        "misclassified-mnist-test.png",
    ):
        assert (tmp_path / "run" / name).stat().st_size > 0, name
    # the served artifact answers like the Keras model it came from
    assert metrics["tflite_agreement"]["mnist-test"]["argmax_identical"]
    assert metrics["tflite_agreement"]["mnist-test"]["max_abs_diff"] < 1e-4
    assert len(metrics["history"]["val_accuracy"]) == metrics["epochs_run"] <= 4
    assert result.metrics["device"].startswith(("CPU", "GPU"))


@pytest.mark.slow
def test_the_default_architecture_trains_with_augmentation(tmp_path, tiny_mnist):
    config = TrainConfig(epochs=1, batch_size=128)
    result = train(config, tmp_path / "run", verbose=0, data=tiny_mnist)
    assert result.metrics["parameters"] < 200_000
    assert result.tflite_path.stat().st_size < 1_000_000


def test_the_same_seed_gives_the_same_data_split():
    config = TrainConfig(sources=("mnist",), limit=200)
    first, second = load_training_data(config), load_training_data(config)
    np.testing.assert_array_equal(first.train.y, second.train.y)
    np.testing.assert_array_equal(first.val.x, second.val.x)
    # MNIST's own test set, and the held-out UJI writers, who judge every run
    assert set(first.tests) == {"mnist-test"} | ({"ujipen"} if uji_available() else set())


def uji_available() -> bool:
    from training.sources import ujipen

    return ujipen.ujipen_path().exists()


def test_bad_configurations_are_refused():
    with pytest.raises(ValueError, match="Unknown sources"):
        TrainConfig(sources=("imagenet",))
    with pytest.raises(ValueError):
        TrainConfig(epochs=0)


def test_train_command_refuses_unknown_sources(tmp_path):
    with pytest.raises(CommandError, match="Unknown sources"):
        call_command("train", "--sources", "nope", "--out", str(tmp_path))


@pytest.mark.django_db
def test_drawings_join_by_their_split_and_imported_pen_digits_never_leak(
    canvas_png, settings, tmp_path, monkeypatch
):

    settings.MEDIA_ROOT = tmp_path
    for label in range(10):
        for index in range(10):
            Drawing.objects.add(NewDrawing(canvas_png(label, index), label, status="approved"))
    Drawing.objects.add(NewDrawing(canvas_png(3, 11), 3, status="pending"))  # never used
    Drawing.objects.add(
        NewDrawing(canvas_png(4, 11), 4, status="approved", source="import:pendigits")
    )
    drawings_only = load_training_data(TrainConfig(sources=("drawings",)))
    assert len(drawings_only.tests["drawings-test"]) == 10  # 1 of every 10 per digit
    # train drawings are a pool drawn into every batch; val ones are fixed images
    assert len(drawings_only.train) == 0 and len(drawings_only) == 81
    assert len(drawings_only.pools[0]) + len(drawings_only.val) == 91
    # with the pendigits source too (a stand-in for its renderings: this is about drawings)
    tiny = pen_source.PenDigitArrays(
        np.zeros((30, 28, 28), np.uint8), np.zeros(30, np.uint8),
        np.arange(1, 31, dtype=np.int16), np.zeros(30, np.int16),
    )  # fmt: skip
    monkeypatch.setattr(pen_source, "load_pendigits", lambda *args, **kwargs: tiny)
    monkeypatch.setattr(synthetic, "style_test_sets", dict)
    monkeypatch.setattr(synthetic, "scan_test_set", lambda: tiny.images())
    config = TrainConfig(sources=("drawings", "pendigits"), augment=False)
    manifest = load_training_data(config).manifest["drawings"]
    used = {sha for rows in manifest.values() for _, sha in rows}
    assert len(used) == 100  # the imported pen digit is left to the pendigits source
