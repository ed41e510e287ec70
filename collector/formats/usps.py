"""USPS handwritten digits (Hull, 1994): 16×16 grey scans of zip codes, 7,291 for
training and 2,007 for testing, in the two distributions people have:

- ``zip.train`` / ``zip.test`` (Hastie, Tibshirani & Friedman's text files,
  often gzipped): one digit a line, ``label v1 … v256``, pixels in [-1, 1]
  with -1 the paper;
- ``usps.h5`` (HDF5): groups ``train`` and ``test``, each with ``data``
  (n, 256) in [0, 1] with 0 the paper, and ``target`` (n,).

:func:`read` gives ink maps (uint8, 255 = full ink, 16×16) for
``classifier.preprocessing``, which makes them 28×28 model inputs like every
other picture.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from collector.formats import DatasetError

COUNTS = {"train": 7_291, "test": 2_007}
TEXT_FILES = {"train": ("zip.train", "zip.train.gz"), "test": ("zip.test", "zip.test.gz")}
H5_FILE = "usps.h5"


def _check(part: str, images: np.ndarray, labels: np.ndarray, where: str, expected: int | None):
    count = COUNTS[part] if expected is None else expected
    if len(images) != count or len(labels) != count:
        raise DatasetError(f"{where}: {len(images):,} digits, expected {count:,}.")
    if labels.min(initial=0) < 0 or labels.max(initial=0) > 9 or (labels != labels.round()).any():
        raise DatasetError(f"{where}: labels must be digits 0-9.")


def _ink(values: np.ndarray, low: float, high: float, where: str) -> np.ndarray:
    if not np.isfinite(values).all() or values.min() < low - 1e-6 or values.max() > high + 1e-6:
        raise DatasetError(f"{where}: pixels must lie in [{low:g}, {high:g}].")
    scaled = (values - low) / (high - low) * 255.0
    return np.clip(np.round(scaled), 0, 255).astype(np.uint8).reshape(-1, 16, 16)


def read_text(path: Path, part: str, expected: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="ascii") as handle:
            rows = [line.split() for line in handle if line.strip()]
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path} is not a readable USPS text file: {exc}") from None
    bad = next((n for n, row in enumerate(rows, 1) if len(row) != 257), None)
    if bad is not None:
        raise DatasetError(f"{path}, line {bad}: expected a label and 256 pixels.")
    try:
        table = np.asarray(rows, dtype=np.float64)
    except ValueError:
        raise DatasetError(f"{path}: every value must be a number.") from None
    if not len(table):
        raise DatasetError(f"{path} has no digits.")
    labels, pixels = table[:, 0], table[:, 1:]
    _check(part, pixels, labels, str(path), expected)
    return _ink(pixels, -1.0, 1.0, str(path)), labels.astype(np.uint8)


def read_h5(path: Path, part: str, expected: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    import h5py

    path = Path(path)
    try:
        with h5py.File(path, "r") as handle:
            pixels = np.asarray(handle[part]["data"], dtype=np.float64)
            labels = np.asarray(handle[part]["target"], dtype=np.float64)
    except (OSError, KeyError) as exc:
        raise DatasetError(
            f"{path} is not a USPS HDF5 file with {part}/data and {part}/target: {exc}"
        ) from None
    if pixels.ndim != 2 or pixels.shape[1] != 256 or labels.ndim != 1:
        raise DatasetError(f"{path}: {part}/data must be (n, 256) and {part}/target (n,).")
    _check(part, pixels, labels, str(path), expected)
    return _ink(pixels, 0.0, 1.0, str(path)), labels.astype(np.uint8)


def read(directory: Path, part: str, expected: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """One part from whichever distribution ``directory`` holds (text files first)."""
    directory = Path(directory)
    for name in TEXT_FILES[part]:
        if (directory / name).is_file():
            return read_text(directory / name, part, expected)
    if (directory / H5_FILE).is_file():
        return read_h5(directory / H5_FILE, part, expected)
    names = " or ".join([*TEXT_FILES[part], H5_FILE])
    raise DatasetError(f"No USPS {part} file in {directory} (need {names}).")
