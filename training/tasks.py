"""The ``training`` queue's edge: queue a run, and the task a worker runs for it.

TensorFlow is imported inside the task (in the worker's child process), never
when this module is imported: the web process imports it to queue runs.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
import time

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from celery.signals import worker_ready
from django.conf import settings
from django.db import transaction

from digits_site.celery import BrokerUnavailable, send
from training.models import TrainingRun

__all__ = [
    "BrokerUnavailable",
    "enqueue",
    "prepare_drawings",
    "prepare_drawings_soon",
    "run_training",
    "start_run",
    "warm_caches",
    "warm_caches_soon",
]

logger = logging.getLogger(__name__)


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
def warm_caches(preset: str = "finetune", limit: int | None = None) -> int:
    """Build, from the ``background`` queue, what a run of ``preset`` loads: the
    variant pools, the rendered test sets and the cached model inputs. Queued by
    ``manage.py serve`` at every start, so the first fine-tune of a fresh instance
    trains instead of rendering for minutes; on a warm instance it finds
    everything cached in seconds. Runs ``manage.py warm_caches`` as a process of
    its own, which may render on every CPU (this daemonic child may not); returns
    its exit status."""
    command = [sys.executable, str(settings.BASE_DIR / "manage.py"), "warm_caches",
               "--preset", preset, "--background"]  # fmt: skip
    if limit:
        command += ["--limit", str(limit)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    log = logger.info if done.returncode == 0 else logger.error
    log("warm_caches exited with %s:\n%s%s", done.returncode, done.stdout, done.stderr[-4000:])
    return done.returncode


@shared_task(name="training.background.prepare_drawings", ignore_result=True)
def prepare_drawings(preset: str = "finetune") -> int:
    """Build, on the ``background`` queue, the cached model inputs and stroke
    variants of every drawing that has none yet (``training.sources.drawings``), as
    a run of ``preset`` reads them: queued when drawings arrive, so a run only
    trains. Returns how many drawings it built."""
    from training import priority
    from training.config import preset_config
    from training.sources import drawings

    priority.lower()
    return drawings.prepare(preset_config(preset))


# One queued preparation covers every drawing that arrived before it runs: a web
# process asks at most once per this many seconds, from a thread of its own, so
# no contribution waits on Redis (nor on a Redis that is down).
PREPARE_DELAY_SECONDS = 1.0
_prepare_pending = threading.Lock()


def prepare_drawings_soon() -> None:
    """Have the background worker prepare new drawings, about a second from now."""
    from digits_site.celery import app

    if app.conf.task_always_eager:
        prepare_drawings()  # tasks run in this process: at once, like the others
        return
    if not _prepare_pending.acquire(blocking=False):
        return  # one is already on its way; it will see this drawing too

    def later() -> None:
        try:
            time.sleep(PREPARE_DELAY_SECONDS)
        finally:
            _prepare_pending.release()
        try:
            send(prepare_drawings)
        except BrokerUnavailable as exc:  # the next run builds them instead
            logger.warning("Could not queue the preparation of new drawings: %s", exc)

    threading.Thread(target=later, name="prepare-drawings", daemon=True).start()


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
