"""``manage.py evaluate``: score the active model (or a given artifact) on a test set.

It scores the served artifact with the serving path (``classifier.serving``),
so the figure is the one users get. The last line is machine-readable:
``accuracy=<float> n=<int>``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from django.core.management.base import BaseCommand, CommandError

from classifier import runtime, serving
from classifier.predictor import Predictor
from collector.formats import DatasetError
from training import sources
from training.evaluation import classification_report, format_report

DATASETS = ("mnist-test", "pendigits")


def load_test_set(name: str) -> sources.Images:
    if name == "mnist-test":
        return sources.load_mnist().test
    return sources.pendigits_test_split()


class _KerasPredictor:
    """A ``.keras`` file behind the predictor's interface (imports TensorFlow)."""

    def __init__(self, path: Path):
        import keras

        self.model = keras.saving.load_model(path)

    def predict(self, images: np.ndarray) -> np.ndarray:
        return self.model.predict(images[..., None], batch_size=512, verbose=0)


def load_predictor(model: Path | None):
    """The given artifact's predictor, or None for the active model."""
    if model is None:
        return None
    if model.is_dir():
        model = model / "model.tflite"
    if model.suffix == ".tflite":
        return Predictor(model)
    if model.suffix == ".keras":
        return _KerasPredictor(model)
    raise CommandError(f"{model}: expected a .tflite or .keras file, or a run directory.")


class Command(BaseCommand):
    help = "Evaluate a model: accuracy, per-class precision/recall/F1 and the confusion matrix."

    def add_arguments(self, parser):
        parser.add_argument("--dataset", choices=DATASETS, default="mnist-test")
        parser.add_argument(
            "--model", type=Path, default=None, help="a .tflite/.keras file or run directory"
        )

    def handle(self, *args, dataset: str, model: Path | None, **options):
        if model is not None and not model.exists():
            raise CommandError(f"{model} does not exist.")
        try:
            predictor = load_predictor(model)
            images = load_test_set(dataset)
            verdicts = serving.classify(images.as_inputs(), predictor)
        except (runtime.NoActiveModel, DatasetError) as exc:
            raise CommandError(str(exc)) from exc
        report = classification_report(images.y, verdicts.probabilities)
        self.stdout.write(format_report(dataset, report))
        self.stdout.write(f"accuracy={report['accuracy']:.6f} n={report['n']}")
