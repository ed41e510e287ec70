"""Storage and database agree: every file has its row, every row its intact file.

A web worker killed between writing a drawing and committing its row leaves a
complete file nobody points at; a disk that failed (or a file edited by hand)
leaves a row whose file is missing or no longer what its hash says. ``manage.py
check_storage`` reports both, and with ``--fix`` removes the orphans once they
are older than a grace period (younger ones may belong to a request still
running) and makes the data directory owner-only. Rows are listed, never
deleted: which copy is right is for staff to decide (restore a backup, or
delete the drawing in the admin).
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.core.files.storage import default_storage
from django.utils import timezone

from classifier.models import ModelVersion
from collector.models import Drawing

FOLDERS = ("drawings", "models")  # what the app keeps in storage


@dataclass
class Report:
    orphans: list[str] = field(default_factory=list)  # files no row points at
    young_orphans: list[str] = field(default_factory=list)  # within the grace period
    removed: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # "drawing 12: drawings/ab/…png"
    damaged: list[str] = field(default_factory=list)
    loosened: list[str] = field(default_factory=list)  # paths readable by others
    tightened: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not (self.orphans or self.missing or self.damaged or self.loosened)


def _walk(folder: str):
    try:
        folders, files = default_storage.listdir(folder)
    except (FileNotFoundError, NotADirectoryError):
        return
    for name in files:
        yield f"{folder}/{name}"
    for sub in folders:
        yield from _walk(f"{folder}/{sub}")


def _referenced() -> set[str]:
    names = set(Drawing.objects.values_list("image", flat=True))
    for version in ModelVersion.objects.all():
        names.update(version.artifact_names())
    return names


def _check_rows(report: Report) -> None:
    for pk, name, sha in Drawing.objects.values_list("pk", "image", "sha256").iterator():
        try:
            with default_storage.open(name, "rb") as handle:
                intact = hashlib.file_digest(handle, "sha256").hexdigest() == sha
        except (FileNotFoundError, ValueError):
            report.missing.append(f"drawing {pk}: {name}")
            continue
        if not intact:
            report.damaged.append(f"drawing {pk}: {name} does not match its hash")
    for version in ModelVersion.objects.all():
        problem = version.artifact_problem()
        if problem:
            target = report.missing if "cannot be read" in problem else report.damaged
            target.append(f"model version {version.version}: {problem}")


def _check_permissions(report: Report, fix: bool) -> None:
    """Nothing under the data directory readable or writable by group or others."""
    root = Path(settings.DIGITS_DATA_DIR)
    if not root.exists():
        return
    for path in [root, *root.rglob("*")]:
        try:
            info = path.lstat()
        except FileNotFoundError:
            continue
        if stat.S_ISLNK(info.st_mode) or info.st_uid != os.geteuid():
            continue
        if info.st_mode & 0o077:
            if fix:
                path.chmod(stat.S_IMODE(info.st_mode) & 0o700)
                report.tightened.append(str(path))
            else:
                report.loosened.append(str(path))


def check(*, fix: bool = False, grace: timedelta = timedelta(hours=1)) -> Report:
    report = Report()
    referenced = _referenced()
    cutoff = timezone.now() - grace
    for folder in FOLDERS:
        for name in _walk(folder):
            if name in referenced:
                continue
            try:
                old = default_storage.get_modified_time(name) < cutoff
            except FileNotFoundError:
                continue
            if not old:
                report.young_orphans.append(name)
            elif fix:
                default_storage.delete(name)
                report.removed.append(name)
            else:
                report.orphans.append(name)
    _check_rows(report)
    _check_permissions(report, fix)
    return report
