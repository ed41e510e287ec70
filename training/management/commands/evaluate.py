"""``manage.py evaluate``: score the active model (or a given artifact) on a test set.

It scores the served artifact with the serving runtime, so the figure is the
one users get. The last line is machine-readable: ``accuracy=<float> n=<int>``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from django.core.management.base import BaseCommand, CommandError

DATASETS = ("mnist-test", "pendigits")


def load_test_set(name: str):
    from training import datasets

    if name == "mnist-test":
        return datasets.load_mnist().test
    return datasets.pendigits_test_split()


def load_predictor(model: Path | None):
    from classifier.runtime import Predictor, active_model

    if model is None:
        return active_model().predictor
    if model.is_dir():
        model = model / "model.tflite"
    if model.suffix == ".tflite":
        return Predictor(model)
    if model.suffix == ".keras":
        import keras

        keras_model = keras.saving.load_model(model)

        class KerasPredictor:
            def predict(self, images: np.ndarray) -> np.ndarray:
                return keras_model.predict(images[..., None], batch_size=512, verbose=0)

        return KerasPredictor()
    raise CommandError(f"{model}: expected a .tflite or .keras file, or a run directory.")


class Command(BaseCommand):
    help = "Evaluate a model: accuracy, per-class precision/recall/F1 and the confusion matrix."

    def add_arguments(self, parser):
        parser.add_argument("--dataset", choices=DATASETS, default="mnist-test")
        parser.add_argument(
            "--model", type=Path, default=None, help="a .tflite/.keras file or run directory"
        )

    def handle(self, *args, dataset: str, model: Path | None, **options):
        from classifier.runtime import NoActiveModel
        from training.datasets import DatasetError
        from training.evaluation import classification_report, format_report

        if model is not None and not model.exists():
            raise CommandError(f"{model} does not exist.")
        try:
            predictor = load_predictor(model)
            split = load_test_set(dataset)
        except (NoActiveModel, DatasetError) as exc:
            raise CommandError(str(exc)) from exc
        images = split.x.astype(np.float32) / 255.0
        probabilities = np.concatenate(
            [predictor.predict(images[i : i + 1000]) for i in range(0, len(images), 1000)]
        )
        report = classification_report(split.y, probabilities)
        self.stdout.write(format_report(dataset, report))
        self.stdout.write(f"accuracy={report['accuracy']:.6f} n={report['n']}")
