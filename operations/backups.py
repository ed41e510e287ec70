"""Backups: the database and every stored file it points at, in one zip.

``database.jsonl`` is a Django fixture, one object a line (natural keys, so it
loads into a freshly migrated instance); ``files/`` holds drawings, model
artifacts and report plots under their storage names; ``manifest.json`` lists
each file's sha256 and the database's so a restore can refuse a damaged backup
before touching anything. The fixture is written into the archive as ``dumpdata`` makes it and
read back a line at a time (``loaddata`` reads JSON Lines as a stream): at a
million drawings it is gigabytes, which neither side may hold in memory.
Backups from before hold ``database.json`` (one JSON document), still restored.

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
import json
import tempfile
import zipfile
import zlib
from collections.abc import Callable
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


def stored_names() -> list[str]:
    from classifier.models import ModelVersion
    from collector.models import Drawing

    names = set(Drawing.objects.values_list("image", flat=True))
    for version in ModelVersion.objects.all():
        names.update(version.artifact_names())
    return sorted(n for n in names if n)


DATABASE = "database.jsonl"
LEGACY_DATABASE = "database.json"
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
    file into ``out``, written beside it and renamed when whole: an interrupted
    backup leaves no archive that looks finished."""
    manifest: dict = {"files": {}}
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
            names = stored_names()
            for done, name in enumerate(names, 1):
                with default_storage.open(name, "rb") as handle:
                    data = handle.read()
                archive.writestr(f"files/{name}", data, compress_type=zipfile.ZIP_STORED)
                manifest["files"][name] = hashlib.sha256(data).hexdigest()
                if done % 1000 == 0 or done == len(names):
                    progress("files", done, len(names))
            archive.writestr("manifest.json", json.dumps(manifest, indent=1))
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)
    return manifest


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
        manifest = json.loads(archive.read("manifest.json"))
        names = set(archive.namelist())
        database = DATABASE if DATABASE in names else LEGACY_DATABASE
        archive.getinfo(database)
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise BackupError(f"{source} is not a Digits backup: {exc}") from exc
    files = manifest["files"]
    with archive:
        for done, (name, digest) in enumerate(files.items(), 1):
            try:
                data = archive.read(f"files/{name}")
            except (OSError, KeyError, zipfile.BadZipFile, zlib.error) as exc:  # bad CRC, cut
                raise BackupError(f"{name} is damaged in the backup: {exc}") from exc
            if hashlib.sha256(data).hexdigest() != digest:
                raise BackupError(f"{name} is damaged in the backup (checksum mismatch).")
            if done % 1000 == 0 or done == len(files):
                progress("checking files", done, len(files))
        written = []
        try:
            for done, (name, digest) in enumerate(files.items(), 1):
                if not _stored_with(name, digest):
                    if default_storage.exists(name):
                        default_storage.delete(name)
                    saved = default_storage.save(name, ContentFile(archive.read(f"files/{name}")))
                    written.append(saved)
                    if saved != name:
                        raise BackupError(f"Storage renamed {name} to {saved}.")
                if done % 1000 == 0 or done == len(files):
                    progress("storing files", done, len(files))
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
    return manifest


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
