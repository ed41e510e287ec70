"""Backups: the database and every stored file it points at, in one zip.

``database.jsonl`` is a Django fixture, one object a line (natural keys, so it
loads into a freshly migrated instance); ``files/part-NNNNN.zip`` are the stored
files (drawings, model artifacts, report plots) under their storage names,
PART_FILES to a part, each part with its own ``manifest.json`` of every file's
sha256; ``manifest.json`` holds each part's sha256 and the database's, so a
restore can refuse a damaged backup before touching anything. The fixture is
written into the archive as ``dumpdata`` makes it and read back a line at a time
(``loaddata`` reads JSON Lines as a stream): at a million drawings it is
gigabytes, which neither side may hold in memory.

Parts, because a zip's directory is held in memory by whoever writes or reads
it: a million files in one zip, with their names and checksums in one manifest,
took 1.4 GB to write and as much to restore. A part's directory and checksums
are ten thousand entries, made and dropped one part at a time, so memory stays
the same at any size. Backups from before hold every file under ``files/`` with
their checksums in the top manifest (``manifest.json``'s ``files`` a mapping,
no ``parts``), and the oldest ``database.json`` (one JSON document): both still
restored.

A restore that stops part way (the process killed, the disk full) is run again
and goes on: a file already stored with its checksum is kept, not written again,
and the database goes in in one transaction, so it is either all there or not
at all (and then loaded again).

The fixture is read as ``loaddata`` reads it (Django's deserializer, natural keys,
forward references), but the drawings, which are nearly all of it, go in in
batches of one ``INSERT`` each instead of one ``UPDATE`` then ``INSERT`` each: at a
million drawings ``loaddata`` took over an hour (README, "Scale").
"""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

from django.core import serializers
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.core.management.color import no_style
from django.db import connection, transaction

# The drawing counts follow from the drawings (the database keeps them, collector.counts):
# restoring both would count every drawing twice.
EXCLUDED = ["contenttypes", "auth.permission", "sessions", "admin.logentry",
            "collector.drawingcount", "collector.modelinput"]  # fmt: skip


class BackupError(RuntimeError):
    pass


def _artifact_names() -> list[str]:
    """Every model version's stored files (artifacts and report plots)."""
    from classifier.models import ModelVersion

    return sorted({n for v in ModelVersion.objects.all() for n in v.artifact_names() if n})


def stored_names() -> Iterator[str]:
    """Every stored file a backup holds: the model versions' artifacts, then each
    drawing's picture, read from the database a few thousand at a time."""
    from collector.models import Drawing

    yield from _artifact_names()
    pictures = Drawing.objects.exclude(image="").order_by("image").values_list("image", flat=True)
    yield from pictures.iterator(chunk_size=5000)


DATABASE = "database.jsonl"
LEGACY_DATABASE = "database.json"
MANIFEST = "manifest.json"
PART_FILES = 10_000  # stored files a part holds: its directory and checksums in memory
COPY_BYTES = 1 << 20
LOAD_BATCH = 2000  # drawings an insert: ~5 MB of strokes, one statement
# Told how it goes: (step, done, total), e.g. ("files", 12000, 1000000).
Progress = Callable[[str, int, int], None]


def _silent(step: str, done: int, total: int) -> None:
    """A :data:`Progress` that listens to nothing."""


class _Hashing(io.RawIOBase):
    """A writable stream that hashes and counts what passes through to ``target``."""

    def __init__(self, target):
        self.target, self.digest, self.size = target, hashlib.sha256(), 0

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self.digest.update(data)
        self.size += len(data)
        return self.target.write(data)


def write_backup(out: Path, progress: Progress = _silent) -> dict:
    """The database (as ``dumpdata`` streams it, hashed on the way) and every stored
    file, a part at a time, into ``out``, written beside it and renamed when whole:
    an interrupted backup leaves no archive that looks finished. Returns the
    manifest (``files``: how many)."""
    from collector import counts

    manifest: dict = {"format": 2, "parts": [], "files": 0}
    tmp = out.with_name(f".{out.name}.partial")
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            progress("database", 0, 1)
            with archive.open(DATABASE, "w", force_zip64=True) as member:
                hashing = _Hashing(member)
                with io.TextIOWrapper(
                    io.BufferedWriter(hashing, COPY_BYTES), encoding="utf-8", newline="\n"
                ) as database:
                    call_command("dumpdata", "--natural-foreign", "--natural-primary",
                                 format="jsonl", exclude=EXCLUDED, stdout=database)  # fmt: skip
                manifest["database"] = {"name": DATABASE, "sha256": hashing.digest.hexdigest(),
                                        "bytes": hashing.size}  # fmt: skip
            progress("database", 1, 1)
            # how many, for the progress bar: the drawings the database counts
            total, names = len(_artifact_names()) + counts.total(), stored_names()
            while True:  # a part at a time (one, if empty, so a backup always has one)
                part = list(itertools.islice(names, PART_FILES))
                if not part and manifest["parts"]:
                    break
                manifest["parts"].append(_write_part(archive, len(manifest["parts"]), part))
                manifest["files"] += len(part)
                progress("files", manifest["files"], max(total, manifest["files"]))
                if len(part) < PART_FILES:
                    break
            archive.writestr(MANIFEST, json.dumps(manifest, indent=1))
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)
    return manifest


def _write_part(archive: zipfile.ZipFile, index: int, names: list[str]) -> dict:
    """Stored files into one part (a zip of their own, with their checksums), made
    in a temporary file and copied into ``archive``; its entry for the manifest."""
    name, digests = f"files/part-{index:05d}.zip", {}
    with tempfile.TemporaryFile() as spool:
        with zipfile.ZipFile(spool, "w", compression=zipfile.ZIP_STORED) as part:
            for stored in names:
                with default_storage.open(stored, "rb") as handle:
                    data = handle.read()
                part.writestr(stored, data)
                digests[stored] = hashlib.sha256(data).hexdigest()
            part.writestr(MANIFEST, json.dumps(digests, indent=1))
        spool.seek(0)
        with archive.open(name, "w", force_zip64=True) as member:
            hashing = _Hashing(member)
            for chunk in iter(lambda: spool.read(COPY_BYTES), b""):
                hashing.write(chunk)
    return {"name": name, "sha256": hashing.digest.hexdigest(), "files": len(names)}


def backed_up_files(archive: zipfile.ZipFile, manifest: dict) -> Iterator[tuple[str, str, bytes]]:
    """Each stored file of a backup, as ``(name, sha256 when backed up, content)``, a
    part at a time (its copy checked against the manifest first). Raises
    :class:`BackupError` for a part or a file that cannot be read whole."""
    if "parts" not in manifest:  # a backup from before parts
        for name, digest in manifest["files"].items():
            yield name, digest, _read(archive, f"files/{name}", name)
        return
    for entry in manifest["parts"]:
        with tempfile.TemporaryFile() as copy:
            try:
                with archive.open(entry["name"]) as member:
                    found = hashlib.sha256()
                    for chunk in iter(lambda: member.read(COPY_BYTES), b""):
                        found.update(chunk)
                        copy.write(chunk)
            except (OSError, KeyError, zipfile.BadZipFile, zlib.error) as exc:
                raise BackupError(f"{entry['name']} is damaged in the backup: {exc}") from exc
            if found.hexdigest() != entry["sha256"]:
                raise BackupError(f"{entry['name']} is damaged in the backup (checksum mismatch).")
            try:
                part = zipfile.ZipFile(copy)
                digests = json.loads(part.read(MANIFEST))
            except (OSError, KeyError, ValueError, zipfile.BadZipFile, zlib.error) as exc:
                raise BackupError(f"{entry['name']} is damaged in the backup: {exc}") from exc
            with part:
                for name, digest in digests.items():
                    yield name, digest, _read(part, name, name)


def _read(archive: zipfile.ZipFile, member: str, name: str) -> bytes:
    try:
        return archive.read(member)
    except (OSError, KeyError, zipfile.BadZipFile, zlib.error) as exc:  # bad CRC, cut
        raise BackupError(f"{name} is damaged in the backup: {exc}") from exc


def _stored_with(name: str, digest: str) -> bool:
    """Whether storage holds ``name`` with exactly this content already (a restore
    that stopped part way wrote it): kept, not written again."""
    try:
        with default_storage.open(name, "rb") as handle:
            found = hashlib.sha256()
            for chunk in iter(lambda: handle.read(COPY_BYTES), b""):
                found.update(chunk)
    except OSError:
        return False
    return found.hexdigest() == digest


def _bootstrap_only() -> list[int] | None:
    """The ids of the model versions a fresh instance holds (only the bootstrap model
    ``ensure_model`` registered), or None when the instance holds anything a restore
    would overwrite: drawings, training runs, trained versions."""
    from classifier.models import ModelVersion
    from classifier.registry import BOOTSTRAP_NOTE
    from collector.models import Drawing
    from training.models import TrainingRun

    if Drawing.objects.exists() or TrainingRun.objects.exists():
        return None
    if ModelVersion.objects.exclude(note=BOOTSTRAP_NOTE).exists():
        return None
    return list(ModelVersion.objects.values_list("pk", flat=True))


def restore_backup(source: Path, progress: Progress = _silent) -> dict:
    """Into a fresh instance (nothing but the bootstrap model): files first (verified),
    then the database in one transaction; a failure leaves the database as it was.
    Run again after an interruption, it keeps the files it stored already."""
    from classifier import runtime
    from classifier.models import ModelVersion

    bootstrap_only = _bootstrap_only()
    if bootstrap_only is None:
        raise BackupError(
            "This instance already has drawings, training runs or trained models; "
            "restore into a fresh one (an empty data directory, or one that `make run` "
            "prepared, which holds only the bootstrap model)."
        )
    try:
        archive = zipfile.ZipFile(source)
        manifest = json.loads(archive.read(MANIFEST))
        names = set(archive.namelist())
        database = DATABASE if DATABASE in names else LEGACY_DATABASE
        archive.getinfo(database)
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise BackupError(f"{source} is not a Digits backup: {exc}") from exc
    # how many files (a backup from before parts names them, with their checksums)
    files = manifest["files"] if "parts" in manifest else len(manifest["files"])
    with archive:
        for done, (name, digest, data) in enumerate(backed_up_files(archive, manifest), 1):
            if hashlib.sha256(data).hexdigest() != digest:
                raise BackupError(f"{name} is damaged in the backup (checksum mismatch).")
            if done % 1000 == 0 or done == files:
                progress("checking files", done, files)
        written = []
        try:
            for done, (name, digest, data) in enumerate(backed_up_files(archive, manifest), 1):
                if not _stored_with(name, digest):
                    if default_storage.exists(name):
                        default_storage.delete(name)
                    saved = default_storage.save(name, ContentFile(data))
                    written.append(saved)
                    if saved != name:
                        raise BackupError(f"Storage renamed {name} to {saved}.")
                if done % 1000 == 0 or done == files:
                    progress("storing files", done, files)
            suffix = Path(database).suffix  # .jsonl (read a line at a time) or .json
            with tempfile.NamedTemporaryFile(suffix=suffix) as fixture:
                lines = _unpack_database(archive, database, manifest.get("database"), fixture)
                progress("loading the database", 0, lines)
                with transaction.atomic():
                    # The bootstrap model of a fresh `make run` gives way to the
                    # backup's models (its files were just replaced by theirs).
                    ModelVersion.objects.filter(pk__in=bootstrap_only).delete()
                    _load_fixture(Path(fixture.name), suffix.lstrip("."), lines, progress)
                    _interrupt_unfinished_runs()
                progress("loading the database", lines, lines)
        except Exception:
            for name in written:
                default_storage.delete(name)
            raise
    runtime.reset()
    return {**manifest, "files": files}


def _unpack_database(archive: zipfile.ZipFile, name: str, expected: dict | None, out) -> int:
    """The database fixture into ``out``, checked against the manifest's checksum
    (backups from before it had one have the zip's CRC alone); returns its lines (in
    JSON Lines one object each: the loading's progress bar)."""
    if expected and expected.get("name") != name:
        expected = None  # a checksum of another fixture than this one
    digest, size, lines = hashlib.sha256(), 0, 0
    try:
        with archive.open(name) as packed:
            for chunk in iter(lambda: packed.read(COPY_BYTES), b""):
                digest.update(chunk)
                size += len(chunk)
                lines += chunk.count(b"\n")
                out.write(chunk)
    except (OSError, zipfile.BadZipFile, zlib.error) as exc:
        raise BackupError(f"{name} is damaged in the backup: {exc}") from exc
    if expected and (digest.hexdigest() != expected.get("sha256") or size != expected.get("bytes")):
        raise BackupError(f"{name} is damaged in the backup (checksum mismatch).")
    out.flush()
    return lines


def _load_fixture(path: Path, fmt: str, lines: int, progress: Progress) -> None:
    """Every object of the fixture into the database (inside the caller's
    transaction), as ``loaddata`` would load it: the drawings in batches (one
    multi-row ``INSERT`` each, the values as they were), every other
    object saved raw, one by one, with its many-to-many and forward references; then
    the tables' id sequences past the ids loaded.

    A batch sends no ``post_save``: its one receiver, which has the background worker
    prepare new drawings for training, is asked once at the end instead. The
    drawings' counts are made once at the end too (``collector.counts``)."""
    from collector import counts
    from collector.models import Drawing
    from training.tasks import prepare_drawings_soon

    batch: list[Drawing] = []
    deferred, models, loaded = [], {Drawing}, 0
    fields = Drawing._meta.concrete_fields
    size = max(1, min(LOAD_BATCH, connection.ops.bulk_batch_size(fields, [None] * LOAD_BATCH)))

    def flush() -> None:
        # Raw, as ``loaddata`` saves: ``bulk_create`` would stamp every ``created_at``
        # with now (``auto_now_add``); ``_insert`` is what ``Model.save_base`` calls.
        if batch:
            Drawing._base_manager._insert(batch, fields=fields, raw=True)
        batch.clear()

    with open(path, encoding="utf-8") as stream, counts.recounted_after():
        for item in serializers.deserialize(fmt, stream, handle_forward_references=True):
            loaded += 1
            if type(item.object) is Drawing and not item.deferred_fields:
                batch.append(item.object)
                if len(batch) == size:
                    flush()
                    progress("loading the database", loaded, lines)
                continue
            flush()  # in the fixture's order: what follows may point at these
            models.add(type(item.object))
            item.save()
            if item.deferred_fields:
                deferred.append(item)
        flush()
    for item in deferred:
        item.save_deferred_fields()
    with connection.cursor() as cursor:
        for statement in connection.ops.sequence_reset_sql(no_style(), models):
            cursor.execute(statement)
    transaction.on_commit(prepare_drawings_soon)


def _interrupt_unfinished_runs() -> int:
    """Runs that were queued or training when the backup was taken have no worker
    here: they end at once, saying why, instead of waiting for a heartbeat timeout."""
    from django.utils import timezone

    from training.models import TrainingRun

    return TrainingRun.objects.filter(
        status__in=[TrainingRun.Status.QUEUED, TrainingRun.Status.RUNNING]
    ).update(
        status=TrainingRun.Status.FAILED,
        finished_at=timezone.now(),
        error="Interrupted: it was unfinished when the backup was taken, and a restored "
        "instance has no worker running it. Start it again.",
    )
