"""Exporting the dataset: original PNGs with a manifest, pen strokes, or 28×28 inputs.

``zip`` is the lossless one (a backup, and what ``import_drawings zip`` reads
back with the same labels, splits, statuses and strokes). ``ndjson`` is one
drawing per line with its strokes, Quick Draw's shape (drawings that have
strokes). ``npz``, ``idx`` and ``kaggle-csv`` carry the model inputs made by
``classifier.preprocessing``.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
from django.core.files.storage import default_storage

from classifier import preprocessing
from collector.formats import idx, kaggle_csv, ndjson
from collector.models import Drawing

FORMATS = ("zip", "ndjson", "npz", "idx", "kaggle-csv")
STROKES_FILE = "strokes.ndjson"
MANIFEST_FIELDS = ("file", "sha256", "label", "split", "status", "source", "writer", "created")


class ExportError(RuntimeError):
    pass


# Told how far an export is: (drawings read, drawings in all).
Progress = Callable[[int, int], None]


def _silent(done: int, total: int) -> None:
    pass


def drawings_for(status: str, progress: Progress = _silent) -> Iterator[Drawing]:
    queryset = Drawing.objects.order_by("id")
    if status != "all":
        queryset = queryset.filter(status=status)
    total = queryset.count()
    progress(0, total)
    done = 0
    for done, drawing in enumerate(queryset.iterator(chunk_size=500), 1):
        yield drawing
        if done % 250 == 0:
            progress(done, total)
    progress(done, total)


def _read(drawing: Drawing) -> bytes:
    with default_storage.open(drawing.image.name, "rb") as handle:
        return handle.read()


def record(drawing: Drawing) -> dict:
    """A drawing as one ndjson line."""
    return {
        "sha256": drawing.sha256,
        "label": drawing.label,
        "split": drawing.split,
        "status": drawing.status,
        "source": drawing.source,
        "writer": drawing.writer,
        "strokes": drawing.strokes,
    }


def write_ndjson(out, status: str = "all", progress: Progress = _silent) -> int:
    """Every drawing that has strokes, one per line (the others are pictures only:
    the zip export carries them)."""
    text = io.TextIOWrapper(out, encoding="utf-8", newline="\n")
    rows = (d for d in drawings_for(status, progress) if d.strokes)
    count = ndjson.write(text, (record(d) for d in rows))
    text.flush()
    text.detach()
    return count


def write_zip(out, status: str = "all", progress: Progress = _silent) -> int:
    count = 0
    manifest = io.StringIO()
    writer = csv.writer(manifest)
    writer.writerow(MANIFEST_FIELDS)
    strokes = io.StringIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as archive:
        for drawing in drawings_for(status, progress):
            name = f"drawings/{drawing.sha256}.png"
            archive.writestr(name, _read(drawing))  # PNGs are compressed already
            if drawing.strokes:
                line = {"sha256": drawing.sha256, "strokes": drawing.strokes}
                strokes.write(json.dumps(line, separators=(",", ":")) + "\n")
            writer.writerow(
                [
                    name,
                    drawing.sha256,
                    drawing.label,
                    drawing.split,
                    drawing.status,
                    drawing.source,
                    drawing.writer,
                    drawing.created_at.isoformat(),
                ]
            )
            count += 1
        archive.writestr("manifest.csv", manifest.getvalue())
        archive.writestr(STROKES_FILE, strokes.getvalue(), compress_type=zipfile.ZIP_DEFLATED)
    return count


def model_inputs(status: str, progress: Progress = _silent) -> dict[str, np.ndarray]:
    rows = list(drawings_for(status, progress))
    if not rows:
        raise ExportError("No drawings to export.")
    x = np.stack([preprocessing.to_model_input(_read(d)) for d in rows])
    return {
        "x": np.round(x * 255).astype(np.uint8),
        "y": np.array([d.label for d in rows], dtype=np.uint8),
        "split": np.array([d.split for d in rows]),
        "status": np.array([d.status for d in rows]),
        "sha256": np.array([d.sha256 for d in rows]),
    }


def write_model_inputs(
    out, fmt: str, status: str = "approved", progress: Progress = _silent
) -> int:
    data = model_inputs(status, progress)
    if fmt == "npz":
        np.savez_compressed(out, **data)
    elif fmt == "idx":
        with zipfile.ZipFile(out, "w") as archive:
            for split in ("train", "val", "test"):
                mask = data["split"] == split
                archive.writestr(
                    f"{split}-images-idx3-ubyte.gz", gzip.compress(idx.to_bytes(data["x"][mask]))
                )
                archive.writestr(
                    f"{split}-labels-idx1-ubyte.gz", gzip.compress(idx.to_bytes(data["y"][mask]))
                )
    elif fmt == "kaggle-csv":
        text = io.TextIOWrapper(out, encoding="ascii", newline="")
        kaggle_csv.write(text, data["x"], data["y"])
        text.flush()
        text.detach()
    else:
        raise ExportError(f"Unknown format {fmt!r}; choose one of {', '.join(FORMATS)}.")
    return len(data["y"])


def write(out, fmt: str, status: str | None = None, progress: Progress = _silent) -> int:
    """Write one export to a binary file; how many drawings it holds. Default status:
    every drawing for the lossless formats, approved ones for model inputs."""
    if fmt == "zip":
        return write_zip(out, status or "all", progress)
    if fmt == "ndjson":
        return write_ndjson(out, status or "all", progress)
    return write_model_inputs(out, fmt, status or "approved", progress)


def export(path: Path, fmt: str, status: str | None = None) -> int:
    """Write the export to ``path`` atomically (a temporary file, then a rename)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.partial")
    try:
        with open(tmp, "wb") as out:
            count = write(out, fmt, status)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return count


SUFFIX = {
    "zip": ".zip",
    "ndjson": ".ndjson",
    "npz": ".npz",
    "idx": "-idx.zip",
    "kaggle-csv": ".csv",
}


def file_name(fmt: str) -> str:
    return f"digits-dataset{SUFFIX[fmt]}"
