"""``manage.py evaluate``: score the active model (or a given artifact) on a test set.

It scores the served artifact with the serving path (``classifier.serving``),
so the figure is the one users get, calibration included. ``--dataset styles``
scores every style of the style test set (held-out writers, ``training.allographs``)
and prints one line per style: the picture alone and, for a version with a pen
view, the pen alone and both as the page sends them. The last line is machine-readable:
``accuracy=<float> n=<int> ece=<float>``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from django.core.management.base import BaseCommand, CommandError

from classifier import calibration, pen, runtime, serving
from classifier import combination as combining
from classifier.predictor import Predictor
from classifier.registry import pen_view_in
from collector.formats import DatasetError
from training.evaluation import classification_report, format_report
from training.sources import base as source_base
from training.sources import mnist as mnist_source
from training.sources import pendigits as pen_source
from training.sources import synthetic

DATASETS = ("mnist-test", "pendigits", "pendigits-scans", "styles")


def load_test_set(name: str) -> source_base.Images:
    if name == "mnist-test":
        return mnist_source.load_mnist().test
    if name == "pendigits-scans":
        return synthetic.scan_test_set()
    if name == "styles":
        sets = synthetic.style_test_sets()
        return source_base.Images(
            np.concatenate([s.x for s in sets.values()]),
            np.concatenate([s.y for s in sets.values()]),
        )
    return pen_source.pendigits_test_split()


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
        # A run directory's calibration sits beside its artifact, in metrics.json.
        metrics = model.with_name("metrics.json")
        fitted = json.loads(metrics.read_text()).get("calibration", {}) if metrics.exists() else {}
        return Predictor(model, temperature=fitted.get("temperature", 1.0))
    if model.suffix == ".keras":
        return _KerasPredictor(model)
    raise CommandError(f"{model}: expected a .tflite or .keras file, or a run directory.")


def load_pen_view(model: Path | None) -> tuple[Predictor | None, dict | None]:
    """The pen view and its combination beside ``model`` (the active version's for
    None); (None, None) where there is none."""
    if model is None:
        loaded = runtime.active_model()
        return loaded.pen, loaded.combination
    pen_bytes, combination = pen_view_in(model if model.is_dir() else model.parent)
    if not pen_bytes:
        return None, None
    return Predictor(pen_bytes, temperature=combination["pen_temperature"]), combination


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
        if dataset == "styles":
            self._per_style(predictor, model)
        ece = calibration.expected_calibration_error(verdicts.probabilities, images.y)
        self.stdout.write(f"expected calibration error {ece * 100:.2f}%")
        self.stdout.write(f"accuracy={report['accuracy']:.6f} n={report['n']} ece={ece:.6f}")

    def _per_style(self, predictor, model: Path | None) -> None:
        """One line per style: the picture alone (an upload), and, for a version with
        a pen view, the pen alone and both combined (the page's live answer)."""
        pen_model, fitted = load_pen_view(model)
        drawn = synthetic.style_test_strokes() if pen_model is not None else {}
        self.stdout.write("\nper style (held-out writers; probe: kept out of training)")
        if drawn:
            self.stdout.write(f"  {'':32} {'picture':>8} {'pen':>8} {'both':>8}")
        for name, style in synthetic.style_test_sets().items():
            p_image = serving.classify(style.as_inputs(), predictor).probabilities
            line = f"  {name:32} {(p_image.argmax(1) == style.y).mean() * 100:7.2f}%"
            if drawn:
                p_pen = pen_model.predict(pen.batch(drawn[name].strokes))
                both = combining.combine(p_image, p_pen, fitted)
                for p in (p_pen, both):
                    line += f" {(p.argmax(1) == style.y).mean() * 100:7.2f}%"
            self.stdout.write(f"{line}  n={len(style)}")
