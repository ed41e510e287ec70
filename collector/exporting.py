"""Dataset exports built outside the request (``DatasetExport`` rows): a worker
writes the file into storage, reporting progress on the row, and staff download
it from the admin when it is ready. ``collector.tasks.start_export`` queues one."""

from __future__ import annotations

import logging
import tempfile
import time

from django.core.files import File
from django.utils import timezone

from collector import exports
from collector.models import DatasetExport

logger = logging.getLogger(__name__)

PROGRESS_EVERY_SECONDS = 1.0


def build(export_id: int) -> str:
    """Claim a queued export and write it; its final status."""
    claimed = DatasetExport.objects.filter(pk=export_id, status=DatasetExport.Status.QUEUED).update(
        status=DatasetExport.Status.RUNNING
    )
    if not claimed:
        return DatasetExport.objects.get(pk=export_id).status  # built by someone else
    export = DatasetExport.objects.get(pk=export_id)
    last = 0.0

    def progress(done: int, total: int) -> None:
        nonlocal last
        now = time.monotonic()
        if now - last >= PROGRESS_EVERY_SECONDS or done == total:
            last = now
            DatasetExport.objects.filter(pk=export_id).update(done=done, total=total)

    try:
        with tempfile.TemporaryFile() as handle:
            count = exports.write(handle, export.fmt, progress=progress)
            handle.seek(0)
            export.file.save(exports.file_name(export.fmt), File(handle), save=False)
            size = export.file.size
    except Exception as exc:
        logger.exception("Export %s failed", export_id)
        DatasetExport.objects.filter(pk=export_id).update(
            status=DatasetExport.Status.FAILED, error=str(exc)[:2000], finished_at=timezone.now()
        )
        return DatasetExport.Status.FAILED
    DatasetExport.objects.filter(pk=export_id).update(
        status=DatasetExport.Status.READY,
        file=export.file.name,
        size=size,
        drawings=count,
        finished_at=timezone.now(),
    )
    return DatasetExport.Status.READY
