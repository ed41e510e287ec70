"""The Kaggle digit-recognizer CSVs: training rows ``label,pixel0,…,pixel783`` and
test rows ``pixel0,…,pixel783`` (one 28×28 image a row), and the submission a
model's answers go back in: ``ImageId,Label``, image ids counting from 1."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import TextIO

import numpy as np

from collector.formats import DatasetError

PIXELS = [f"pixel{i}" for i in range(784)]
HEADER = ["label", *PIXELS]
SUBMISSION_HEADER = ["ImageId", "Label"]
# A Kaggle test.csv holds 28,000 rows; this leaves room and bounds the memory.
MAX_TEST_ROWS = 200_000


def read(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """``(images (n, 28, 28) uint8, labels (n,) uint8)`` from a training CSV."""
    path = Path(path)
    if not path.exists():
        raise DatasetError(f"Kaggle CSV not found: {path}")
    with open(path, encoding="ascii") as handle:
        header = handle.readline().strip().split(",")
        if header[:2] != ["label", "pixel0"] or len(header) != 785:
            raise DatasetError(f"{path} is not a Kaggle train CSV (label,pixel0..pixel783).")
        try:
            table = np.loadtxt(handle, delimiter=",", dtype=np.int64, ndmin=2)
        except ValueError as exc:
            raise DatasetError(f"{path}: {exc}") from exc
    if table.size == 0:
        raise DatasetError(f"{path} has no rows.")
    if (
        table.shape[1] != 785
        or table.min() < 0
        or table[:, 1:].max() > 255
        or table[:, 0].max() > 9
    ):
        raise DatasetError(f"{path}: expected 785 columns of labels 0-9 and pixels 0-255.")
    return table[:, 1:].reshape(-1, 28, 28).astype(np.uint8), table[:, 0].astype(np.uint8)


def write(out: TextIO, images: np.ndarray, labels: np.ndarray) -> None:
    """Rows of ``label,pixel0..pixel783`` (with the header) to a text stream."""
    writer = csv.writer(out)
    writer.writerow(HEADER)
    for label, image in zip(labels, images.reshape(len(images), -1), strict=True):
        writer.writerow([int(label), *image.tolist()])


def read_test(handle: TextIO, name: str = "the CSV") -> np.ndarray:
    """Images (n, 28, 28) uint8 from a Kaggle test CSV (``pixel0..pixel783`` rows),
    or :class:`DatasetError` saying which row is wrong. Nothing but that format:
    the header exactly, 784 whole numbers 0-255 a row, at least one row."""
    header = handle.readline().strip().lstrip("\ufeff").split(",")
    if header != PIXELS:
        hint = " (a train CSV: it has a label column)" if header[:1] == ["label"] else ""
        raise DatasetError(
            f"{name} is not a Kaggle test CSV: the header must be pixel0..pixel783{hint}."
        )
    rows = []
    for number, line in enumerate(handle, start=2):
        if not line.strip():
            continue
        if len(rows) >= MAX_TEST_ROWS:
            raise DatasetError(f"{name} has more than {MAX_TEST_ROWS:,} rows.")
        cells = line.strip().split(",")
        if len(cells) != 784:
            raise DatasetError(f"{name}, line {number}: {len(cells)} values, expected 784.")
        try:
            values = [int(cell) for cell in cells]
        except ValueError:
            raise DatasetError(f"{name}, line {number}: pixels are whole numbers 0-255.") from None
        if min(values) < 0 or max(values) > 255:
            raise DatasetError(f"{name}, line {number}: pixels are whole numbers 0-255.")
        rows.append(values)
    if not rows:
        raise DatasetError(f"{name} has no rows.")
    return np.asarray(rows, np.uint8).reshape(-1, 28, 28)


def write_submission(out: TextIO, labels: np.ndarray) -> None:
    """``ImageId,Label`` with ids from 1, as Kaggle scores a submission."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(SUBMISSION_HEADER)
    for image_id, label in enumerate(labels, start=1):
        writer.writerow([image_id, int(label)])
