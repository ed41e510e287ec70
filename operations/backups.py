"""Backups: the database and every stored file it points at, in one zip.

``database.jsonl`` is a Django fixture, one object a line (natural keys, so it
loads into a freshly migrated instance); ``files/`` holds drawings, model
artifacts and report plots under their storage names; ``manifest.json`` lists
each file's sha256 so a restore can refuse a damaged backup before touching
anything. The fixture is written into the archive as ``dumpdata`` makes it and
read back a line at a time (``loaddata`` reads JSON Lines as a stream): at a
million drawings it is gigabytes, which neither side may hold in memory.
Backups from before hold ``database.json`` (one JSON document), still restored.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import tempfile
import zipfile
import zlib
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


def write_backup(out: Path) -> dict:
    manifest = {"files": {}}
    tmp = out.with_name(f".{out.name}.partial")
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            with (
                archive.open(DATABASE, "w", force_zip64=True) as member,
                io.TextIOWrapper(member, encoding="utf-8", newline="\n") as database,
            ):
                call_command("dumpdata", "--natural-foreign", "--natural-primary",
                             format="jsonl", exclude=EXCLUDED, stdout=database)  # fmt: skip
            for name in stored_names():
                with default_storage.open(name, "rb") as handle:
                    data = handle.read()
                archive.writestr(f"files/{name}", data, compress_type=zipfile.ZIP_STORED)
                manifest["files"][name] = hashlib.sha256(data).hexdigest()
            archive.writestr("manifest.json", json.dumps(manifest, indent=1))
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)
    return manifest


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


def restore_backup(source: Path) -> dict:
    """Into a fresh instance (nothing but the bootstrap model): files first (verified),
    then the database in one transaction; a failure leaves the database as it was."""
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
    with archive:
        for name, digest in manifest["files"].items():
            try:
                data = archive.read(f"files/{name}")
            except (OSError, KeyError, zipfile.BadZipFile, zlib.error) as exc:  # bad CRC, cut
                raise BackupError(f"{name} is damaged in the backup: {exc}") from exc
            if hashlib.sha256(data).hexdigest() != digest:
                raise BackupError(f"{name} is damaged in the backup (checksum mismatch).")
        written = []
        try:
            for name in manifest["files"]:
                if default_storage.exists(name):
                    default_storage.delete(name)
                saved = default_storage.save(name, ContentFile(archive.read(f"files/{name}")))
                written.append(saved)
                if saved != name:
                    raise BackupError(f"Storage renamed {name} to {saved}.")
            suffix = Path(database).suffix  # .jsonl: loaddata reads it a line at a time
            with tempfile.NamedTemporaryFile(suffix=suffix) as fixture:
                try:
                    with archive.open(database) as packed:
                        shutil.copyfileobj(packed, fixture, COPY_BYTES)
                except (OSError, zipfile.BadZipFile, zlib.error) as exc:
                    raise BackupError(f"{database} is damaged in the backup: {exc}") from exc
                fixture.flush()
                with transaction.atomic():
                    # The bootstrap model of a fresh `make run` gives way to the
                    # backup's models (its files were just replaced by theirs).
                    ModelVersion.objects.filter(pk__in=bootstrap_only).delete()
                    call_command("loaddata", fixture.name, verbosity=0)
                    _interrupt_unfinished_runs()
        except Exception:
            for name in written:
                default_storage.delete(name)
            raise
    runtime.reset()
    return manifest


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
