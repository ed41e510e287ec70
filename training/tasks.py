"""Celery tasks for the ``training`` queue. TensorFlow is imported inside the
task (in the worker's child process), never when this module is imported."""

from __future__ import annotations

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from celery.signals import worker_ready

from training import runs
from training.models import TrainingRun


@shared_task(
    bind=True,
    name="training.tasks.run_training",
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=5,
)
def run_training(self, run_id: int) -> str | None:
    if not TrainingRun.objects.filter(pk=run_id).exists():
        # The message can arrive before the request's transaction commits.
        raise self.retry(countdown=1)
    try:
        return runs.execute(run_id)
    except SoftTimeLimitExceeded:
        runs.finish(run_id, TrainingRun.Status.FAILED, error="The run hit its time limit.")
        return TrainingRun.Status.FAILED


@worker_ready.connect
def fail_runs_of_dead_workers(**kwargs) -> None:
    runs.fail_orphaned_runs()
