"""Importing drawings: UNIPEN pen strokes, ndjson strokes, folders of PNGs (as they
are, or zipped), Kaggle's training CSV and our own zip export. Strokes are drawn
by ``classifier.canvas`` exactly as the page draws them, and kept with the drawing.

Every import goes through ``Drawing.objects.add_many``: each drawing checked as a
contribution is, the new ones stored together (``collector.storing``). It is
idempotent (the content hash dedupes) and an interrupted import, run again,
skips what it stored.
"""

from __future__ import annotations

import io
import logging
import shutil
import tempfile
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from django.db.models import JSONField, TextField, Value
from django.db.models.functions import MD5, Cast
from PIL import Image

from audit.models import AuditEvent
from classifier import canvas
from collector.checks import validate_label
from collector.formats import DatasetError, digits_zip, image_folder, kaggle_csv, ndjson, unipen
from collector.models import DatasetImport, Drawing, InvalidDrawing, NewDrawing
from collector.storing import REFUSALS

logger = logging.getLogger(__name__)


@dataclass
class ImportSummary:
    added: int = 0
    skipped: int = 0  # already in the dataset
    refused: Counter = field(default_factory=Counter)  # reason → count

    def line(self) -> str:
        refused = sum(self.refused.values())
        reasons = "; ".join(f"{n}× {reason}" for reason, n in self.refused.most_common())
        return f"added={self.added} skipped={self.skipped} refused={refused}" + (
            f" ({reasons})" if reasons else ""
        )


@dataclass
class Item:
    data: bytes | Callable[[], bytes]
    label: object
    source: str
    writer: str = ""
    split: str | None = None
    status: str | None = None
    strokes: object = None  # as the page records them (checked by canvas.parse_strokes)
    problem: str = ""  # why this item cannot be imported (a bad line of a file)
    # The drawing's sha256 where it was exported: a picture re-rendered from its
    # strokes gets another one, so an export's own is how it is recognised.
    known_sha256: str = ""


# The UCI pen-digit tablet sent a point every 100 ms (Alpaydin & Alimoglu).
PENDIGITS_SAMPLE_MS = 100.0


def pendigits_items(path: Path) -> Iterator[Item]:
    """A UNIPEN file's digits (gzipped or not), each drawn as the canvas draws it and
    kept with its strokes in canvas coordinates."""
    for digit in unipen.read(path):
        # Drawn from the strokes as stored (0.1 px), so re-rendering what is kept, as
        # an ndjson round trip does, gives the same picture and the same hash.
        strokes = canvas.strokes_as_json(
            canvas.timed(canvas.fit_to_canvas(digit.strokes), PENDIGITS_SAMPLE_MS)
        )
        yield Item(
            data=lambda strokes=strokes: _render(strokes),
            label=digit.label,
            source="import:pendigits",
            writer=str(digit.writer),
            strokes=strokes,
        )


def _render(strokes: object) -> bytes:
    return canvas.render_canvas_png(canvas.parse_strokes(strokes))


def ndjson_items(path: Path) -> Iterator[Item]:
    """One drawing per line (our ``ndjson`` export, or Quick Draw's layout), each
    rendered exactly as the canvas renders it; labels, splits and statuses kept."""
    for _, record in ndjson.read(path):
        if isinstance(record, DatasetError):
            yield Item(data=b"", label=None, source="", problem=str(record))
            continue
        yield Item(
            data=lambda strokes=record["strokes"]: _render(strokes),
            label=record.get("label"),
            source=str(record.get("source") or "import:ndjson")[:32],
            writer=str(record.get("writer") or "")[:64],
            split=record.get("split"),
            status=record.get("status"),
            strokes=record["strokes"],
            known_sha256=str(record.get("sha256") or ""),
        )


PNG_ONLY = frozenset({".png"})


def folder_items(directory: Path) -> Iterator[Item]:
    """PNG files in one sub-folder per label: ``DIR/7/anything.png``."""
    for png, label in image_folder.files(directory, PNG_ONLY):
        yield Item(data=png.read_bytes, label=label, source="import:folder")


def zip_items(path: Path) -> Iterator[Item]:
    """Our own ``export_dataset --format zip``: labels, splits and statuses kept."""
    for entry in digits_zip.read(path):
        yield Item(
            data=entry.png,
            label=entry.label,
            source=entry.source,
            writer=entry.writer,
            split=entry.split,
            status=entry.status,
            strokes=entry.strokes,
            known_sha256=entry.sha256,
        )


def folder_zip_items(path: Path) -> Iterator[Item]:
    """A folder of PNGs zipped as it is: ``7/anything.png`` (under any top folder),
    the sub-folder's name the label, as :func:`folder_items` reads a folder."""
    with zipfile.ZipFile(path) as archive:
        names = [n for n in archive.namelist() if n.lower().endswith(".png")]
        for name in sorted(names):
            parent = PurePosixPath(name).parent.name
            label = image_folder.digit(parent)
            if label is None:
                problem = f"{name}: its folder is not a digit (0-9)"
                yield Item(data=b"", label=None, source="", problem=problem)
                continue
            yield Item(data=archive.read(name), label=label, source="import:folder")


def kaggle_items(path: Path) -> Iterator[Item]:
    """Kaggle's digit-recognizer ``train.csv``: each row's 28×28 digit (light ink on
    black, as MNIST) stored as a PNG."""
    images, labels = kaggle_csv.read(path)
    for image, label in zip(images, labels, strict=True):
        out = io.BytesIO()
        Image.fromarray(image).save(out, "PNG")
        yield Item(data=out.getvalue(), label=int(label), source="import:kaggle")


# The formats an import reads: ``manage.py import_drawings`` and the admin's page.
KINDS: dict[str, Callable[[Path], Iterator[Item]]] = {
    "pendigits": pendigits_items,
    "ndjson": ndjson_items,
    "folder": folder_items,
    "zip": zip_items,
    "kaggle": kaggle_items,
}
# What an import job's file is read as (a folder arrives zipped).
JOB_READERS = {**KINDS, "folder": folder_zip_items}


def _zipped_pngs(path: Path) -> int:
    with zipfile.ZipFile(path) as archive:
        return sum(n.lower().endswith(".png") for n in archive.namelist())


# How many items a reader yields, counted without reading them (names and lines).
_COUNTS: dict[Callable, Callable[[Path], int]] = {
    ndjson_items: ndjson.count,
    zip_items: digits_zip.count,
    folder_items: lambda directory: sum(1 for _ in image_folder.files(directory, PNG_ONLY)),
    folder_zip_items: _zipped_pngs,
}


def open_items(kind: str, path: Path, readers: dict = KINDS) -> tuple[Iterator[Item], int]:
    """A file's items one at a time, and how many there are (for the progress), never
    all held at once: a million drawings' pictures and strokes are gigabytes. The
    formats whose readers take the whole file in anyway (a UNIPEN file, Kaggle's
    CSV) are counted by reading them."""
    read = readers[kind]
    counter = _COUNTS.get(read)
    if counter is None:
        items = list(read(path))
        return iter(items), len(items)
    return read(path), counter(path)


# Kinds whose files say each drawing's status (others are approved by default:
# running the import is staff's decision).
OWN_STATUS = frozenset({"zip", "ndjson"})
REPORT_EVERY = 50  # drawings between progress updates of an import job


def run_job(job_id: int) -> str:
    """Run a queued :class:`DatasetImport` (a background worker, or the request's own
    process when none can be asked): read the uploaded file, add its drawings with
    the progress on the row, and leave the report on it. Returns its final status."""
    job = DatasetImport.objects.get(pk=job_id)
    if not job.claim():
        return job.status
    try:
        with tempfile.TemporaryDirectory() as folder:
            local = Path(folder) / Path(job.file.name).name
            with job.file.open("rb") as source, open(local, "wb") as copy:
                shutil.copyfileobj(source, copy)  # readers want a file; storage may be a bucket
            items, total = open_items(job.kind, local, JOB_READERS)
            done = 0
            job.report(0, total)

            def progress() -> None:
                nonlocal done
                done += 1
                if done % REPORT_EVERY == 0 or done == total:
                    job.report(done, total)

            status = job.drawing_status or (None if job.kind in OWN_STATUS else "approved")
            summary = run_import(items, status=status, progress=progress)
    except (DatasetError, OSError, KeyError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        job.fail(f"Cannot read {Path(job.file.name).name} as {job.get_kind_display()}: {exc}")
        return job.status
    except Exception as exc:  # the row must never stay "running"
        logger.exception("Import %s failed", job_id)
        job.fail(f"The import stopped: {exc}")
        return job.status
    job.finish(added=summary.added, skipped=summary.skipped, refusals=dict(summary.refused))
    record_import(summary, Path(job.file.name).name, job.kind, by=job.requested_by)
    return job.status


def record_import(summary: ImportSummary, name: str, kind: str, by=None) -> None:
    """The import in the site's history: what file, by whom, and what it did."""
    AuditEvent.record(
        AuditEvent.Action.IMPORTED, f"{summary.added} drawings from {name}", by=by,
        file=name, format=kind, added=summary.added, skipped=summary.skipped,
        refused=sum(summary.refused.values()),
    )  # fmt: skip


def already_stored(known_sha256: str, strokes: list | None) -> bool:
    """Whether the dataset has this drawing already, by the sha256 its export carried
    or by its strokes: importing the ndjson and the zip export of one dataset (or
    either twice) adds each drawing once, though the ndjson's pictures are made
    anew from the strokes and hash differently."""
    if known_sha256 and Drawing.objects.filter(sha256=known_sha256).exists():
        return True
    if not strokes:
        return False
    stored = canvas.strokes_as_json(strokes)
    # By the strokes' hash first: PostgreSQL finds it in an index (migration 0013).
    same_hash = MD5(Cast(Value(stored, output_field=JSONField()), output_field=TextField()))
    return (
        Drawing.objects.filter(strokes__isnull=False)
        .alias(strokes_md5=MD5(Cast("strokes", output_field=TextField())))
        .filter(strokes_md5=same_hash, strokes=stored)
        .exists()
    )


# Drawings checked, then stored together (``Drawing.objects.add_many``: their files,
# then one transaction); an interrupted import loses at most this many, added again
# when it is run again (known drawings are skipped, so nothing is added twice).
IMPORT_BATCH = 500


def run_import(items: Iterator[Item], *, status: str | None, progress=None) -> ImportSummary:
    """Add each item; an item's own status (from a zip manifest) wins over ``status``.
    IMPORT_BATCH items at a time."""
    summary = ImportSummary()
    batch: list[Item] = []
    for item in items:
        batch.append(item)
        if len(batch) == IMPORT_BATCH:
            _import_batch(batch, status, summary, progress)
            batch = []
    if batch:
        _import_batch(batch, status, summary, progress)
    return summary


def _import_batch(items: list[Item], status: str | None, summary: ImportSummary, progress) -> None:
    """A batch's items checked one by one (a bad line is refused, a known drawing
    skipped), the rest stored together; the progress told once per item."""
    news: list[NewDrawing] = []
    for item in items:
        try:
            if item.problem:
                raise InvalidDrawing(item.problem)
            strokes = canvas.parse_strokes(item.strokes) if item.strokes is not None else None
            validate_label(item.label)  # a bad line is refused, even of a known drawing
            if already_stored(item.known_sha256, strokes):
                summary.skipped += 1
                continue
            data = item.data() if callable(item.data) else item.data
            news.append(NewDrawing(data, item.label, source=item.source, writer=item.writer,
                                   split=item.split, status=item.status or status,
                                   strokes=strokes))  # fmt: skip
        except REFUSALS as exc:
            summary.refused[str(exc)] += 1
    for outcome in Drawing.objects.add_many(news):
        if isinstance(outcome, Exception):
            summary.refused[str(outcome)] += 1
        elif outcome[1]:
            summary.added += 1
        else:
            summary.skipped += 1
    for _ in items if progress is not None else ():
        progress()
