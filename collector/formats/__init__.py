"""Digit dataset file formats, one module each, each reading and writing its format.

They turn bytes into NumPy arrays (or pen strokes) and back, and know nothing of
Django, drawings or training runs: the collector's import/export and training's
data sources both use them.
"""

import gzip
from pathlib import Path


class DatasetError(RuntimeError):
    """A dataset is missing, corrupt or not what it claims to be."""


def read_file(path: Path, what: str) -> bytes:
    """A dataset file's bytes, gunzipped when they are gzip's (by their magic number,
    not the name); ``what`` names the file in the error when it is missing."""
    path = Path(path)
    if not path.exists():
        raise DatasetError(f"{what} not found: {path}")
    data = path.read_bytes()
    return gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data
