"""The model-input exports (``npz``, ``idx``, ``kaggle-csv``), streamed.

Each drawing's 28×28 input (kept beside it, ``collector.model_inputs``) is
written a chunk at a time: memory holds one chunk, whatever the dataset's size. Before,
every input was collected first (as float32: 3 KB a drawing, 3 GB at a
million), which a worker with the usual memory cannot hold.

The formats want their sizes up front (an ``.npy`` header and an IDX header
both state the count; unreadable drawings are left out, so the count is known
only at the end): the rows go to spool files on disk first, and each member
of the archive is then written as its header and the spooled bytes, copied a
megabyte at a time.
"""

from __future__ import annotations

import csv
import gzip
import io
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import ExitStack
from typing import BinaryIO

import numpy as np

from collector import dataset
from collector.formats import kaggle_csv
from collector.models import Drawing

CHUNK = 1000
SPLITS = ("train", "val", "test")
# The text arrays' widths: what the fields can hold (split and status are choices,
# a sha256 is 64 hex digits).
TEXT_DTYPES = {"split": "<U5", "status": "<U8", "sha256": "<U64"}
COPY_BYTES = 1 << 20


class NothingToExport(RuntimeError):
    pass


def input_chunks(drawings: Iterator[Drawing]) -> Iterator[tuple[np.ndarray, list[Drawing]]]:
    """``(inputs (n, 28, 28) uint8, their drawings)``, up to CHUNK at a time, from the
    inputs kept beside the drawings (``dataset.model_inputs_of``: made and kept
    the first time); a drawing whose file is unreadable is left out (and logged)."""
    chunk: list[Drawing] = []
    for drawing in drawings:
        chunk.append(drawing)
        if len(chunk) == CHUNK:
            yield from _readable(chunk)
            chunk = []
    if chunk:
        yield from _readable(chunk)


def _readable(chunk: list[Drawing]) -> Iterator[tuple[np.ndarray, list[Drawing]]]:
    found = dataset.model_inputs_of(chunk)  # an unreadable one is logged there
    rows = [(d, x) for d, x in zip(chunk, found, strict=True) if x is not None]
    if rows:
        yield np.stack([x for _, x in rows]), [d for d, _ in rows]


def _copy(source: BinaryIO, target: BinaryIO) -> None:
    source.seek(0)
    shutil.copyfileobj(source, target, COPY_BYTES)


def write_npz(out: BinaryIO, drawings: Iterator[Drawing]) -> int:
    """``x``, ``y``, ``split``, ``status`` and ``sha256`` as ``np.load`` reads them
    (a compressed zip of ``.npy`` files, as ``np.savez_compressed`` writes)."""
    names = ("x", "y", *TEXT_DTYPES)
    with ExitStack() as stack:
        spools = {name: stack.enter_context(tempfile.TemporaryFile()) for name in names}
        count = 0
        for x, rows in input_chunks(drawings):
            spools["x"].write(x.tobytes())
            spools["y"].write(np.array([d.label for d in rows], np.uint8).tobytes())
            for field, dtype in TEXT_DTYPES.items():
                spools[field].write(np.array([getattr(d, field) for d in rows], dtype).tobytes())
            count += len(rows)
        if not count:
            raise NothingToExport("No drawings to export.")
        shapes = {"x": ((count, 28, 28), np.uint8), "y": ((count,), np.uint8)}
        shapes.update({field: ((count,), dtype) for field, dtype in TEXT_DTYPES.items()})
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as archive:
            for name in names:
                shape, dtype = shapes[name]
                header = {"descr": np.dtype(dtype).str, "fortran_order": False, "shape": shape}
                with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
                    np.lib.format.write_array_header_1_0(member, header)
                    _copy(spools[name], member)
    return count


def _idx_header(count: int, *dims: int) -> bytes:
    shape = (count, *dims)
    return bytes([0, 0, 0x08, len(shape)]) + b"".join(n.to_bytes(4, "big") for n in shape)


def write_idx(out: BinaryIO, drawings: Iterator[Drawing]) -> int:
    """MNIST's four files per split (images and labels, gzipped IDX) in one zip."""
    with ExitStack() as stack:
        images = {s: stack.enter_context(tempfile.TemporaryFile()) for s in SPLITS}
        labels = {s: stack.enter_context(tempfile.TemporaryFile()) for s in SPLITS}
        counts = dict.fromkeys(SPLITS, 0)
        for x, rows in input_chunks(drawings):
            splits = np.array([d.split for d in rows])
            y = np.array([d.label for d in rows], np.uint8)
            for split in SPLITS:
                mine = splits == split
                images[split].write(x[mine].tobytes())
                labels[split].write(y[mine].tobytes())
                counts[split] += int(mine.sum())
        if not sum(counts.values()):
            raise NothingToExport("No drawings to export.")
        with zipfile.ZipFile(out, "w", allowZip64=True) as archive:
            for split in SPLITS:
                for kind, spool, dims in (("images-idx3", images, (28, 28)),
                                          ("labels-idx1", labels, ())):  # fmt: skip
                    name = f"{split}-{kind}-ubyte.gz"
                    with (
                        archive.open(name, "w", force_zip64=True) as member,
                        gzip.GzipFile(fileobj=member, mode="wb", mtime=0) as packed,
                    ):
                        packed.write(_idx_header(counts[split], *dims))
                        _copy(spool[split], packed)
    return sum(counts.values())


def write_kaggle_csv(out: BinaryIO, drawings: Iterator[Drawing]) -> int:
    """Kaggle's digit-recognizer training CSV, a chunk of rows at a time."""
    text = io.TextIOWrapper(out, encoding="ascii", newline="")
    writer = csv.writer(text)
    writer.writerow(kaggle_csv.HEADER)
    count = 0
    for x, rows in input_chunks(drawings):
        table = np.column_stack([[d.label for d in rows], x.reshape(len(rows), -1)])
        writer.writerows(table.tolist())
        count += len(rows)
    text.flush()
    text.detach()
    if not count:
        raise NothingToExport("No drawings to export.")
    return count


WRITERS = {"npz": write_npz, "idx": write_idx, "kaggle-csv": write_kaggle_csv}
