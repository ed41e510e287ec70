"""A Kaggle digit-recognizer submission: a test CSV's images (rows of
``pixel0,…,pixel783``) answered by a model (the active one, or a given version),
as ``ImageId,Label``, image ids counting from 1. The command ``predict_csv`` and
the admin's upload both come here.

Kaggle's images are MNIST's format already (28×28, ink bright on dark, centred):
they go to the model as they are, scaled to [0, 1], exactly as MNIST's own test
images do when a run is scored.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from typing import TextIO

import numpy as np

from classifier import serving
from classifier.models import ModelVersion
from classifier.predictor import Predictor
from digits_site.refusals import Refused

PIXELS = [f"pixel{i}" for i in range(784)]
SUBMISSION_HEADER = ["ImageId", "Label"]
# A Kaggle test.csv holds 28,000 rows; this leaves room and bounds the memory.
MAX_TEST_ROWS = 200_000


class NotATestCsv(Refused, ValueError):
    """The upload is not a Kaggle test CSV; the message says which row is wrong."""

    code = "not_a_test_csv"


def predictor_for(version: int | None) -> tuple[Predictor | None, str]:
    """The predictor to use (None: the active model's) and how to name it."""
    if version is None:
        active = ModelVersion.active()
        return None, f"the active model (v{active.version})" if active else "the active model"
    chosen = ModelVersion.objects.filter(version=version).first()
    if chosen is None:
        raise LookupError(f"There is no model version {version}.")
    return chosen.load_predictor(), f"model v{version}"


def read_test(handle: TextIO, name: str = "the CSV") -> np.ndarray:
    """Images (n, 28, 28) uint8 from a Kaggle test CSV (``pixel0..pixel783`` rows),
    or :class:`NotATestCsv` saying which row is wrong. Nothing but that format:
    the header exactly, 784 whole numbers 0-255 a row, at least one row."""
    header = handle.readline().strip().lstrip("\ufeff").split(",")
    if header != PIXELS:
        hint = " (a train CSV: it has a label column)" if header[:1] == ["label"] else ""
        raise NotATestCsv(
            f"{name} is not a Kaggle test CSV: the header must be pixel0..pixel783{hint}."
        )
    rows = []
    for number, line in enumerate(handle, start=2):
        if not line.strip():
            continue
        if len(rows) >= MAX_TEST_ROWS:
            raise NotATestCsv(f"{name} has more than {MAX_TEST_ROWS:,} rows.")
        cells = line.strip().split(",")
        if len(cells) != 784:
            raise NotATestCsv(f"{name}, line {number}: {len(cells)} values, expected 784.")
        try:
            values = [int(cell) for cell in cells]
        except ValueError:
            raise NotATestCsv(f"{name}, line {number}: pixels are whole numbers 0-255.") from None
        if min(values) < 0 or max(values) > 255:
            raise NotATestCsv(f"{name}, line {number}: pixels are whole numbers 0-255.")
        rows.append(values)
    if not rows:
        raise NotATestCsv(f"{name} has no rows.")
    return np.asarray(rows, np.uint8).reshape(-1, 28, 28)


def predict(
    images: np.ndarray,
    predictor: Predictor | None = None,
    progress: Callable[[int], None] = lambda n: None,
) -> np.ndarray:
    """Labels (n,) for uint8 images (n, 28, 28), in :func:`serving.classify`'s chunks,
    telling ``progress`` how many were answered each time."""
    inputs = images.astype(np.float32) / 255.0
    return serving.classify(inputs, predictor, progress=progress).digits.astype(np.uint8)


def submission(labels: np.ndarray) -> bytes:
    out = io.StringIO()
    write_submission(out, labels)
    return out.getvalue().encode("ascii")


def write_submission(out: TextIO, labels: np.ndarray) -> None:
    """``ImageId,Label`` with ids from 1, as Kaggle scores a submission."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(SUBMISSION_HEADER)
    for image_id, label in enumerate(labels, start=1):
        writer.writerow([image_id, int(label)])
