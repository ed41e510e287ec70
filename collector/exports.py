"""Exporting the dataset: original PNGs with a manifest, pen strokes, or 28×28 inputs.

``zip`` is the lossless one (``collector.formats.digits_zip``: a backup, and
what ``import_drawings zip`` reads back with the same labels, splits, statuses
and strokes). ``ndjson`` is one drawing per line with its strokes, Quick Draw's
shape (drawings that have strokes). ``npz``, ``idx`` and ``kaggle-csv`` carry
the model inputs made by ``classifier.preprocessing``. Stored drawings are read
through the same checked reader as training (``dataset.read_image``): a missing
or damaged file is left out and logged, never exported as it is.

Staff exports are built outside the request (``DatasetExport`` rows, queued by
``collector.tasks.start_export``): :func:`build` writes the file into storage
with its progress on the row, and staff download it from the admin.
"""

from __future__ import annotations

import io
import logging
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from django.core.files import File

from collector import counts, dataset, input_exports
from collector.formats import digits_zip, ndjson
from collector.models import DatasetExport, Drawing

logger = logging.getLogger(__name__)

FORMATS = ("zip", "ndjson", "npz", "idx", "kaggle-csv")
SUFFIX = {
    "zip": ".zip",
    "ndjson": ".ndjson",
    "npz": ".npz",
    "idx": "-idx.zip",
    "kaggle-csv": ".csv",
}
PROGRESS_EVERY_SECONDS = 1.0


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
    entries = (
        digits_zip.Entry(
            png=png,
            sha256=drawing.sha256,
            label=drawing.label,
            split=drawing.split,
            status=drawing.status,
            source=drawing.source,
            writer=drawing.writer,
            created=drawing.created_at.isoformat(),
            strokes=drawing.strokes,
        )
        for drawing, png in dataset.readable_images(drawings_for(status, progress))
    )
    return digits_zip.write(out, entries)


def write_model_inputs(
    out, fmt: str, status: str = "approved", progress: Progress = _silent
) -> int:
    """The 28×28 inputs in ``fmt``, streamed (``collector.input_exports``)."""
    writer = input_exports.WRITERS.get(fmt)
    if writer is None:
        raise ExportError(f"Unknown format {fmt!r}; choose one of {', '.join(FORMATS)}.")
    try:
        return writer(out, drawings_for(status, progress))
    except input_exports.NothingToExport as exc:
        raise ExportError(str(exc)) from None


def write(out, fmt: str, status: str | None = None, progress: Progress = _silent) -> int:
    """Write one export to a binary file; how many drawings it holds. Default status:
    every drawing for the lossless formats, approved ones for model inputs."""
    if fmt == "zip":
        return write_zip(out, status or "all", progress)
    if fmt == "ndjson":
        return write_ndjson(out, status or "all", progress)
    return write_model_inputs(out, fmt, status or "approved", progress)


def described() -> list[dict]:
    """Each format, what it holds and why, and how many drawings it would hold now:
    what the admin shows beside each export button."""
    everything, with_strokes = counts.total(), counts.total(pen=True)  # kept, never scanned
    approved = counts.total(status=Drawing.Status.APPROVED)
    inputs = "approved drawings only, as the 28×28 inputs training reads"
    return [
        {"format": "zip", "count": everything,
         "holds": "every drawing of every status: PNGs, strokes and a manifest (lossless: "
                  "import_drawings zip reads it back, labels, splits and statuses kept)"},
        {"format": "ndjson", "count": with_strokes,
         "holds": "every drawing that has strokes, any status, one per line (Quick, Draw!'s "
                  "shape); pictures without strokes are only in the zip"},
        {"format": "npz", "count": approved, "holds": f"{inputs} (NumPy arrays, by split)"},
        {"format": "idx", "count": approved, "holds": f"{inputs} (MNIST's IDX files, by split)"},
        {"format": "kaggle-csv", "count": approved,
         "holds": f"{inputs} (Kaggle's digit-recognizer CSV)"},
    ]  # fmt: skip


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


def file_name(fmt: str) -> str:
    return f"digits-dataset{SUFFIX[fmt]}"


def build(export_id: int) -> str:
    """Claim a queued export and write it into storage; its final status."""
    export = DatasetExport.objects.get(pk=export_id)
    if not export.claim():
        return export.status  # built by someone else
    last = 0.0

    def progress(done: int, total: int) -> None:
        nonlocal last
        now = time.monotonic()
        if now - last >= PROGRESS_EVERY_SECONDS or done == total:
            last = now
            export.report(done, total)

    try:
        with tempfile.TemporaryFile() as handle:
            count = write(handle, export.fmt, progress=progress)
            handle.seek(0)
            export.file.save(file_name(export.fmt), File(handle), save=False)
    except Exception as exc:
        logger.exception("Export %s failed", export_id)
        export.fail(str(exc))
        return export.status
    export.finish(drawings=count)
    return export.status
