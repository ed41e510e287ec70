"""EMNIST Digits in its IDX ``.gz`` files (Cohen et al., 2017):
``emnist-digits-{train,test}-{images-idx3,labels-idx1}-ubyte.gz``.

Its images are stored transposed (column-major, a NIST legacy): read as they are,
a 7 lies on its side. :func:`read` turns them upright, MNIST's way round. The
published split has 240,000 training and 40,000 test digits; a file with other
counts is refused (a truncated copy, or another EMNIST split renamed).
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from collector.formats import DatasetError, idx

FILES = {
    part: (
        f"emnist-digits-{part}-images-idx3-ubyte.gz",
        f"emnist-digits-{part}-labels-idx1-ubyte.gz",
    )
    for part in ("train", "test")
}
COUNTS = {"train": 240_000, "test": 40_000}


def read(directory: Path, part: str, expected: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(images (n, 28, 28) uint8 upright, labels (n,) uint8)`` of one part.
    ``expected``: the count to insist on (default: the published one)."""
    images_name, labels_name = FILES[part]
    arrays = []
    for name in (images_name, labels_name):
        path = Path(directory) / name
        if not path.is_file():
            raise DatasetError(f"EMNIST file missing: {path}")
        try:
            arrays.append(idx.parse(gzip.decompress(path.read_bytes())))
        except (OSError, EOFError, gzip.BadGzipFile) as exc:
            raise DatasetError(f"{path} is not a readable gzip file: {exc}") from None
        except DatasetError as exc:
            raise DatasetError(f"{path}: {exc}") from None
    images, labels = arrays
    count = COUNTS[part] if expected is None else expected
    if images.ndim != 3 or images.shape[1:] != (28, 28) or labels.ndim != 1:
        raise DatasetError(f"EMNIST {part}: expected 28×28 images and one label each.")
    if len(images) != len(labels) or len(images) != count:
        raise DatasetError(
            f"EMNIST {part}: {len(images):,} images and {len(labels):,} labels, expected "
            f"{count:,} of each."
        )
    if labels.max(initial=0) > 9:
        raise DatasetError(f"EMNIST {part}: labels above 9 (not the digits split).")
    return np.ascontiguousarray(images.transpose(0, 2, 1)), labels.astype(np.uint8)
