"""A Kaggle digit-recognizer submission: a test CSV's images answered by a model
(the active one, or a given version), as ``ImageId,Label``. The command
``predict_csv`` and the admin's upload both come here.

Kaggle's images are MNIST's format already (28×28, ink bright on dark, centred):
they go to the model as they are, scaled to [0, 1], exactly as MNIST's own test
images do when a run is scored.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np

from classifier import serving
from classifier.models import ModelVersion
from classifier.predictor import Predictor
from collector.formats import kaggle_csv

BATCH = 1024


def predictor_for(version: int | None) -> tuple[Predictor | None, str]:
    """The predictor to use (None: the active model's) and how to name it."""
    if version is None:
        active = ModelVersion.active()
        return None, f"the active model (v{active.version})" if active else "the active model"
    chosen = ModelVersion.objects.filter(version=version).first()
    if chosen is None:
        raise LookupError(f"There is no model version {version}.")
    return chosen.load_predictor(), f"model v{version}"


def predict(
    images: np.ndarray,
    predictor: Predictor | None = None,
    progress: Callable[[int], None] = lambda n: None,
) -> np.ndarray:
    """Labels (n,) for uint8 images (n, 28, 28), in batches, telling ``progress``
    how many were answered each time."""
    labels = []
    for start in range(0, len(images), BATCH):
        chunk = images[start : start + BATCH].astype(np.float32) / 255.0
        labels.append(serving.classify(chunk, predictor).digits)
        progress(len(chunk))
    return np.concatenate(labels).astype(np.uint8)


def submission(labels: np.ndarray) -> bytes:
    out = io.StringIO()
    kaggle_csv.write_submission(out, labels)
    return out.getvalue().encode("ascii")
