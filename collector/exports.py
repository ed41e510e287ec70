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
import tempfile
import zipfile
from collections.abc import Iterable
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


def drawings_for(status: str) -> Iterable[Drawing]:
    queryset = Drawing.objects.order_by("id")
    if status != "all":
        queryset = queryset.filter(status=status)
    return queryset.iterator(chunk_size=500)


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


def write_ndjson(out, status: str = "all") -> int:
    """Every drawing that has strokes, one per line (the others are pictures only:
    the zip export carries them)."""
    text = io.TextIOWrapper(out, encoding="utf-8", newline="\n")
    rows = (d for d in drawings_for(status) if d.strokes)
    count = ndjson.write(text, (record(d) for d in rows))
    text.flush()
    text.detach()
    return count


def write_zip(out, status: str = "all") -> int:
    count = 0
    manifest = io.StringIO()
    writer = csv.writer(manifest)
    writer.writerow(MANIFEST_FIELDS)
    strokes = io.StringIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as archive:
        for drawing in drawings_for(status):
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


def model_inputs(status: str) -> dict[str, np.ndarray]:
    rows = list(drawings_for(status))
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


def write_model_inputs(out, fmt: str, status: str = "approved") -> int:
    data = model_inputs(status)
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


def export(path: Path, fmt: str, status: str | None = None) -> int:
    """Write the export to ``path`` atomically (a temporary file, then a rename)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.partial")
    try:
        with open(tmp, "wb") as out:
            if fmt == "zip":
                count = write_zip(out, status or "all")
            elif fmt == "ndjson":
                count = write_ndjson(out, status or "all")
            else:
                count = write_model_inputs(out, fmt, status or "approved")
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


def export_to_temporary_file(fmt: str, status: str | None = None):
    """For downloads: an open temporary file (deleted on close) and a file name."""
    handle = tempfile.TemporaryFile()  # noqa: SIM115 - FileResponse closes it
    if fmt == "zip":
        write_zip(handle, status or "all")
    elif fmt == "ndjson":
        write_ndjson(handle, status or "all")
    else:
        write_model_inputs(handle, fmt, status or "approved")
    handle.seek(0)
    return handle, f"digits-dataset{SUFFIX[fmt]}"
