"""The Kaggle digit-recognizer training CSV: rows ``label,pixel0,…,pixel783`` (one
28×28 image a row). Its test CSV and the submission a model's answers go back
in are the classifier's (``classifier.submissions``)."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import TextIO

import numpy as np

from collector.formats import DatasetError

HEADER = ["label", *(f"pixel{i}" for i in range(784))]


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
