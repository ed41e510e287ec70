"""Executing a training run: claim → data → train → register → gate → finish.

The worker that claims a run owns it. Every way out (success, failure,
cancellation, a time limit) writes a final status; a worker that dies is
detected when its message is redelivered or when a worker starts on its host.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import threading
import time
import traceback
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from training.models import TrainingRun

logger = logging.getLogger(__name__)

PROGRESS_EVERY_SECONDS = 2.0
HEARTBEAT_SECONDS = 30.0


class BrokerUnavailable(RuntimeError):
    """The task queue cannot be reached; nothing was queued."""


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def owner_is_dead(run: TrainingRun) -> bool:
    """True when the run's owner was a process on this host that no longer exists."""
    host, _, pid = run.worker.rpartition(":")
    return host == socket.gethostname() and pid.isdigit() and not _pid_alive(int(pid))


def finish(run_id: int, status: str, **fields) -> None:
    TrainingRun.objects.filter(pk=run_id).exclude(status__in=TrainingRun.FINISHED).update(
        status=status, finished_at=timezone.now(), **fields
    )


def died_message(run: TrainingRun) -> str:
    return f"The worker running it ({run.worker}) died: killed, out of memory or lost."


def finish_if_queued(run_id: int) -> None:
    """Cancel a run that no worker has claimed yet (a later claim then finds nothing)."""
    TrainingRun.objects.filter(pk=run_id, status=TrainingRun.Status.QUEUED).update(
        status=TrainingRun.Status.CANCELLED, finished_at=timezone.now()
    )


def fail_orphaned_runs() -> int:
    """Runs whose worker is gone end ``failed`` with a reason: a dead process on this
    host, or any worker (on any machine) that has sent no heartbeat for
    ``DIGITS_RUN_STALE_SECONDS``. Called when a worker starts and when staff look
    at runs, so a vanished machine is noticed in minutes, not at redelivery."""
    stale_before = timezone.now() - timedelta(seconds=settings.DIGITS_RUN_STALE_SECONDS)
    failed = 0
    for run in TrainingRun.objects.filter(status=TrainingRun.Status.RUNNING):
        if owner_is_dead(run):
            finish(run.pk, TrainingRun.Status.FAILED, error=died_message(run))
            failed += 1
        elif run.heartbeat_at is not None and run.heartbeat_at < stale_before:
            minutes = (timezone.now() - run.heartbeat_at).total_seconds() / 60
            finish(
                run.pk,
                TrainingRun.Status.FAILED,
                error=f"No heartbeat from its worker ({run.worker}) for {minutes:.0f} minutes: "
                "the machine or process running it is gone.",
            )
            failed += 1
    return failed


class _Heartbeat(threading.Thread):
    """Marks a running run alive every ``HEARTBEAT_SECONDS`` through every phase
    (loading data, training, evaluating), from a thread of its own."""

    def __init__(self, run_id: int):
        super().__init__(name=f"heartbeat-{run_id}", daemon=True)
        self.run_id = run_id
        self.stopped = threading.Event()

    def run(self) -> None:
        from django.db import connection

        try:
            while not self.stopped.wait(HEARTBEAT_SECONDS):
                TrainingRun.objects.filter(
                    pk=self.run_id, status=TrainingRun.Status.RUNNING
                ).update(heartbeat_at=timezone.now())
        except Exception:  # a missed beat is not worth failing the run over
            logger.warning("Heartbeat of run %s stopped", self.run_id, exc_info=True)
        finally:
            connection.close()

    def stop(self) -> None:
        self.stopped.set()
        self.join(timeout=5)


def enqueue(run: TrainingRun) -> None:
    """Queue a run for a worker. Raises :class:`BrokerUnavailable` if Redis is down."""
    from kombu.exceptions import OperationalError

    from training.tasks import run_training

    try:
        run_training.apply_async(
            args=[run.pk],
            retry=True,
            retry_policy={"max_retries": 1, "interval_start": 0, "interval_step": 0.5},
        )
    except (OperationalError, OSError, ConnectionError) as exc:
        raise BrokerUnavailable(
            "The training queue (Redis) is unreachable; no run was started. Try again later."
        ) from exc


def start_run(**config) -> TrainingRun:
    """Create a queued run and enqueue it, or leave nothing behind."""
    with transaction.atomic():
        run = TrainingRun.objects.create(**config)
        enqueue(run)  # raising rolls the row back: no run stays queued forever
    return run


class _Progress:
    """Writes progress to the row at most every couple of seconds, and reads the
    cancel flag at the same pace."""

    def __init__(self, run: TrainingRun):
        self.run = run
        self.started = time.monotonic()
        self.last_write = 0.0
        self.cancelled = False

    def batch(self, epoch: int, step: int, steps_per_epoch: int, logs: dict) -> None:
        now = time.monotonic()
        if now - self.last_write < PROGRESS_EVERY_SECONDS and step != steps_per_epoch:
            return
        self.last_write = now
        total = self.run.epochs * steps_per_epoch
        done = (epoch - 1) * steps_per_epoch + step
        elapsed = now - self.started
        TrainingRun.objects.filter(pk=self.run.pk).update(
            epoch=epoch,
            step=step,
            steps_per_epoch=steps_per_epoch,
            loss=_finite(logs.get("loss")),
            accuracy=_finite(logs.get("accuracy")),
            eta_seconds=elapsed / done * (total - done) if done else None,
            heartbeat_at=timezone.now(),
        )
        self.cancelled = TrainingRun.objects.filter(pk=self.run.pk, cancel_requested=True).exists()

    def epoch(self, epoch: int, logs: dict) -> None:
        self.run.refresh_from_db(fields=["log_tail"])
        self.run.append_log(
            f"epoch {epoch}/{self.run.epochs}: loss {logs.get('loss', 0):.4f} "
            f"accuracy {logs.get('accuracy', 0):.4f} val_accuracy {logs.get('val_accuracy', 0):.4f}"
        )
        TrainingRun.objects.filter(pk=self.run.pk).update(
            val_accuracy=_finite(logs.get("val_accuracy")), log_tail=self.run.log_tail
        )

    def should_stop(self) -> bool:
        return self.cancelled


def _finite(value) -> float | None:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if value == value and abs(value) != float("inf") else None


def _log(run_id: int, line: str) -> None:
    run = TrainingRun.objects.get(pk=run_id)
    run.append_log(line)
    TrainingRun.objects.filter(pk=run_id).update(log_tail=run.log_tail)


def execute(run_id: int) -> str | None:
    """Run a claimed training run to a final status; returns it (None if not ours)."""
    claimed = TrainingRun.objects.filter(pk=run_id, status=TrainingRun.Status.QUEUED).update(
        status=TrainingRun.Status.RUNNING,
        started_at=timezone.now(),
        heartbeat_at=timezone.now(),
        worker=worker_id(),
    )
    if not claimed:
        run = TrainingRun.objects.filter(pk=run_id).first()
        if run is not None and run.status == TrainingRun.Status.RUNNING and owner_is_dead(run):
            # Our message came back because the worker running it died.
            finish(run_id, TrainingRun.Status.FAILED, error=died_message(run))
        return None

    run = TrainingRun.objects.get(pk=run_id)
    if run.cancel_requested:
        finish(run_id, TrainingRun.Status.CANCELLED)
        return TrainingRun.Status.CANCELLED
    out_dir = Path(settings.DIGITS_DATA_DIR) / "runs" / f"run-{run_id}"
    heartbeat = _Heartbeat(run_id)
    heartbeat.start()
    try:
        status = _train_and_register(run, out_dir)
    except Exception as exc:
        from training.trainer import TrainingCancelled

        if isinstance(exc, TrainingCancelled):
            _log(run_id, "cancelled")
            finish(run_id, TrainingRun.Status.CANCELLED)
            return TrainingRun.Status.CANCELLED
        logger.exception("Training run %s failed", run_id)
        error = f"{type(exc).__name__}: {exc}\n\n{traceback.format_exc(limit=8)}"
        if out_of_memory(exc):
            error = (
                f"Out of {'GPU ' if 'ResourceExhausted' in type(exc).__name__ else ''}memory "
                "while training: try a smaller batch size, a smaller architecture or a "
                f"data limit.\n\n{error}"
            )
        finish(run_id, TrainingRun.Status.FAILED, error=error[-5000:])
        return TrainingRun.Status.FAILED
    finally:
        heartbeat.stop()
        shutil.rmtree(out_dir, ignore_errors=True)  # the artifacts now live in storage
    return status


def out_of_memory(exc: BaseException) -> bool:
    """Host memory (MemoryError, also NumPy's) or accelerator memory (TensorFlow's
    ResourceExhaustedError), recognised without importing TensorFlow here."""
    return isinstance(exc, MemoryError) or type(exc).__name__ == "ResourceExhaustedError"


def _train_and_register(run: TrainingRun, out_dir: Path) -> str:
    from classifier.models import ModelVersion
    from classifier.registry import register_directory
    from training import evaluation, gate, trainer

    config = trainer.TrainConfig(
        architecture=run.architecture,
        epochs=run.epochs,
        batch_size=run.batch_size,
        learning_rate=run.learning_rate,
        sources=run.sources(),
        augment=run.augment,
        seed=run.seed,
        limit=run.limit,
        kaggle_csv=run.kaggle_csv,
    )
    device = trainer.configure_device()
    TrainingRun.objects.filter(pk=run.pk).update(device=device)
    _log(run.pk, f"loading data: {', '.join(config.sources)} ({device})")
    data = trainer.load_training_data(config)
    TrainingRun.objects.filter(pk=run.pk).update(manifest=data.manifest)
    _log(run.pk, f"training on {len(data.train)} images, validating on {len(data.val)}")
    progress = _Progress(run)
    result = trainer.train(
        config,
        out_dir,
        verbose=0,
        data=data,
        on_batch=progress.batch,
        on_epoch=progress.epoch,
        should_stop=progress.should_stop,
    )

    # The active model, scored on the same test drawings in this same run.
    active = ModelVersion.active()
    active_report = None
    drawings_test = data.tests.get(gate.DRAWINGS_TEST)
    if active is not None and drawings_test is not None:
        predictor = active.load_predictor()
        active_report = evaluation.classification_report(
            drawings_test.y, predictor.predict(drawings_test.x.astype("float32") / 255.0)
        )
    decision = gate.decide(result.metrics["tests"], active_report)

    with transaction.atomic():
        version = register_directory(out_dir, activate=False, note=f"training run {run.pk}")
        if decision.passed:
            version.promote(by=run.started_by, reason=f"passed the gate in training run {run.pk}")
        else:
            version.reject(decision.reasons)
        TrainingRun.objects.filter(pk=run.pk).update(model_version=version, gate=decision.as_dict())
        finish(run.pk, TrainingRun.Status.SUCCEEDED, epoch=result.metrics["epochs_run"])
    _log(run.pk, f"model v{version.version}: {'promoted' if decision.passed else 'rejected'}")
    return TrainingRun.Status.SUCCEEDED
