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

__all__ = [
    "BrokerUnavailable",
    "enqueue",
    "run_training",
    "start_run",
    "warm_caches",
    "warm_caches_soon",
]


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


@shared_task(name="training.background.warm_caches", ignore_result=True)
def warm_caches(preset: str = "finetune", limit: int | None = None) -> list[str]:
    """Build, on the ``background`` queue, what a run of ``preset`` loads: the
    variant pools, the rendered test sets and the cached model inputs. Queued by
    ``manage.py serve`` at every start, so the first fine-tune of a fresh instance
    trains instead of rendering for minutes; on a warm instance it finds
    everything cached in seconds. Returns the steps it went through."""
    from training import priority, sources
    from training.config import TrainConfig, preset_fields

    priority.lower()  # only CPU that serving leaves (this child is background work)
    fields = {k: v for k, v in preset_fields(preset).items() if k != "preset"}
    config = TrainConfig.from_run_fields(**{**fields, **({"limit": limit} if limit else {})})
    steps: list[str] = []

    def heard(step: str, done: int, total: int) -> None:
        if not steps or steps[-1] != step:
            steps.append(step)

    sources.load_training_data(config, heard)
    return steps


def warm_caches_soon() -> bool:
    """Queue :func:`warm_caches` (False, and nothing else, if Redis is down)."""
    try:
        send(warm_caches)
    except BrokerUnavailable:
        return False
    return True


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
