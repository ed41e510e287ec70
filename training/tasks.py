"""The ``training`` queue's edge: queue a run, and the task a worker runs for it.

TensorFlow is imported inside the task (in the worker's child process), never
when this module is imported: the web process imports it to queue runs.
"""

from __future__ import annotations

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from celery.signals import worker_ready
from django.db import transaction

from digits_site.celery import BrokerUnavailable, send
from training.models import TrainingRun

__all__ = ["BrokerUnavailable", "enqueue", "run_training", "start_run"]


@shared_task(
    bind=True,
    name="training.tasks.run_training",
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=5,
)
def run_training(self, run_id: int) -> str | None:
    from training import priority

    priority.lower()  # before TensorFlow starts a thread: serving comes first
    from training import runs  # TensorFlow's side: only in the worker's child process

    if not TrainingRun.objects.filter(pk=run_id).exists():
        # The message can arrive before the request's transaction commits.
        raise self.retry(countdown=1)
    try:
        return runs.execute(run_id)
    except SoftTimeLimitExceeded:
        TrainingRun.objects.get(pk=run_id).finish(
            TrainingRun.Status.FAILED, error="The run hit its time limit."
        )
        return TrainingRun.Status.FAILED


@worker_ready.connect
def fail_runs_of_dead_workers(**kwargs) -> None:
    TrainingRun.objects.fail_orphaned()


def enqueue(run: TrainingRun) -> None:
    """Queue a run for a worker. Raises :class:`BrokerUnavailable` if Redis is down."""
    try:
        send(run_training, run.pk)
    except BrokerUnavailable as exc:
        raise BrokerUnavailable(
            "The training queue (Redis) is unreachable; no run was started. Try again later."
        ) from exc


def start_run(**fields) -> TrainingRun:
    """Create a queued run and enqueue it, or leave nothing behind."""
    with transaction.atomic():
        run = TrainingRun.objects.create(**fields)
        enqueue(run)  # raising rolls the row back: no run stays queued forever
    return run
