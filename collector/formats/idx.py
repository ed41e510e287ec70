"""MNIST's IDX format: magic (0, 0, 0x08 = unsigned byte, ndim), big-endian sizes, data."""

from __future__ import annotations

import numpy as np

from collector.formats import DatasetError


def parse(data: bytes) -> np.ndarray:
    """An (uncompressed) IDX file's array."""
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise DatasetError("Not an unsigned-byte IDX file.")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DatasetError("The IDX header is cut short.")
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = int(np.prod(shape))
    if len(data) - header != expected:
        raise DatasetError(f"IDX body has {len(data) - header} bytes, header says {expected}.")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def to_bytes(array: np.ndarray) -> bytes:
    """An unsigned-byte array as an (uncompressed) IDX file."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
        int(n).to_bytes(4, "big") for n in array.shape
    )
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()
