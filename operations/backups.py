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

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.db import transaction

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
            suffix = Path(database).suffix  # .jsonl: loaddata reads it a line at a time
            with tempfile.NamedTemporaryFile(suffix=suffix) as fixture:
                _unpack_database(archive, database, manifest.get("database"), fixture)
                progress("loading the database", 0, 1)
                with transaction.atomic():
                    # The bootstrap model of a fresh `make run` gives way to the
                    # backup's models (its files were just replaced by theirs).
                    ModelVersion.objects.filter(pk__in=bootstrap_only).delete()
                    call_command("loaddata", fixture.name, verbosity=0)
                    _interrupt_unfinished_runs()
                progress("loading the database", 1, 1)
        except Exception:
            for name in written:
                default_storage.delete(name)
            raise
    runtime.reset()
    return manifest


def _unpack_database(archive: zipfile.ZipFile, name: str, expected: dict | None, out) -> None:
    """The database fixture into ``out``, checked against the manifest's checksum
    (backups from before it had one have the zip's CRC alone)."""
    if expected and expected.get("name") != name:
        expected = None  # a checksum of another fixture than this one
    digest, size = hashlib.sha256(), 0
    try:
        with archive.open(name) as packed:
            for chunk in iter(lambda: packed.read(COPY_BYTES), b""):
                digest.update(chunk)
                size += len(chunk)
                out.write(chunk)
    except (OSError, zipfile.BadZipFile, zlib.error) as exc:
        raise BackupError(f"{name} is damaged in the backup: {exc}") from exc
    if expected and (digest.hexdigest() != expected.get("sha256") or size != expected.get("bytes")):
        raise BackupError(f"{name} is damaged in the backup (checksum mismatch).")
    out.flush()


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
