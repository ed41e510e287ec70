"""The ``background`` queue's collector tasks: scoring drawings with the active
model, building dataset exports."""

from __future__ import annotations

import logging

from celery import shared_task

from digits_site.celery import BrokerUnavailable, send

logger = logging.getLogger(__name__)


@shared_task(name="collector.tasks.score_drawings", ignore_result=True)
def score_drawings() -> int:
    """Every drawing without the active model's guess gets one."""
    from classifier.runtime import NoActiveModel
    from collector import scoring

    try:
        scored = scoring.score()
    except NoActiveModel:
        logger.warning("No active model: drawings were not scored")
        return 0
    logger.info("Scored %s drawing(s) with the active model", scored)
    return scored


def enqueue_scoring() -> bool:
    """Ask a background worker to score; False if the broker cannot be reached (the
    caller may score in-process instead, or leave it to the next promotion)."""
    try:
        send(score_drawings)
    except BrokerUnavailable as exc:
        logger.warning("Could not queue scoring of drawings: %s", exc)
        return False
    return True


@shared_task(name="collector.tasks.build_export", ignore_result=True)
def build_export(export_id: int) -> str:
    """Write an export into storage with its progress on the row; its final status."""
    from collector import exports

    return exports.build(export_id)


def start_export(fmt: str, user=None):
    """A queued ``DatasetExport``, handed to a background worker once the row is
    committed (built in-process if no worker can be asked)."""
    from django.db import transaction

    from collector import exports
    from collector.models import DatasetExport

    if fmt not in exports.FORMATS:
        choices = ", ".join(exports.FORMATS)
        raise exports.ExportError(f"Unknown format {fmt!r}; choose one of {choices}.")
    export = DatasetExport.objects.create(
        fmt=fmt, requested_by=user if getattr(user, "is_authenticated", False) else None
    )
    transaction.on_commit(lambda: enqueue_export(export.pk) or exports.build(export.pk))
    return export


def enqueue_export(export_id: int) -> bool:
    """False if the broker cannot be reached (the caller builds it in-process)."""
    try:
        send(build_export, export_id)
    except BrokerUnavailable as exc:
        logger.warning("Could not queue export %s: %s", export_id, exc)
        return False
    return True


@shared_task(name="collector.tasks.import_drawings", ignore_result=True)
def import_drawings(job_id: int) -> str:
    """Run an import staff started in the admin; then score what it added."""
    from collector import imports

    status = imports.run_job(job_id)
    enqueue_scoring()
    return status


def start_import(job_id: int) -> None:
    """Hand a committed ``DatasetImport`` to a background worker (run in-process if no
    worker can be asked, as an export is)."""
    try:
        send(import_drawings, job_id)
    except BrokerUnavailable as exc:
        from collector import imports

        logger.warning("Could not queue import %s: %s; importing in-process", job_id, exc)
        imports.run_job(job_id)
