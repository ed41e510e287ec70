"""Executing a training run: claim → data → train → register → gate → finish.

The worker that claims a run owns it. Every way out (success, failure,
cancellation, a time limit) writes a final status; a worker that dies is
detected when its message is redelivered, when a worker starts, or when its
heartbeat stops (``TrainingRun.objects.fail_orphaned``). Queueing a run is
``training.tasks``' job; this module never imports it.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import threading
import time
import traceback
from pathlib import Path

from django.conf import settings
from django.db import connection, transaction

from classifier.models import ModelVersion
from classifier.registry import register_directory
from digits_site.errors import disk_full
from training import gate, opinions, progress, sources, trainer
from training.config import ARCHITECTURE_NAMES, TrainConfig
from training.models import TrainingRun, worker_id
from training.pen_data import PenSet

logger = logging.getLogger(__name__)

PROGRESS_EVERY_SECONDS = 2.0
HEARTBEAT_SECONDS = 30.0


class _Heartbeat(threading.Thread):
    """Marks a running run alive every ``HEARTBEAT_SECONDS`` through every phase
    (loading data, training, evaluating), from a thread of its own."""

    def __init__(self, run_id: int):
        super().__init__(name=f"heartbeat-{run_id}", daemon=True)
        self.run_id = run_id
        self.stopped = threading.Event()

    def run(self) -> None:
        try:
            run = TrainingRun(pk=self.run_id)
            while not self.stopped.wait(HEARTBEAT_SECONDS):
                run.beat()
        except Exception:  # a missed beat is not worth failing the run over
            logger.warning("Heartbeat of run %s stopped", self.run_id, exc_info=True)
        finally:
            connection.close()

    def stop(self) -> None:
        self.stopped.set()
        self.join(timeout=5)


class _Loading:
    """Loading's steps and counts on the row (at most every couple of seconds, and
    at each new step), with an ETA for the step: a first run renders its variant
    pools for minutes, and staff should see that it moves. A cancel is honoured
    between steps."""

    def __init__(self, run: TrainingRun):
        self.run = run
        self.step = None
        self.step_started = time.monotonic()
        self.last_write = 0.0

    def __call__(self, step: str, done: int, total: int) -> None:
        now = time.monotonic()
        new_step = step != self.step
        if new_step:
            self.step, self.step_started = step, now
            self.run.log(f"{step}{f' ({total:,})' if total else ''}")
        elif now - self.last_write < PROGRESS_EVERY_SECONDS and done != total:
            return
        self.last_write = now
        elapsed = now - self.step_started
        eta = elapsed / done * (total - done) if done and total else None
        self.run.report_loading(step, done, total, eta)
        if self.run.cancel_is_requested():
            raise progress.TrainingCancelled("cancelled while loading data")


class _Progress(progress.Callback):
    """Writes progress to the row at most every couple of seconds, and reads the
    cancel flag at the same pace."""

    def __init__(self, run: TrainingRun):
        self.run = run
        self.last_write = 0.0
        self.cancelled = False

    def on_batch(self, epoch: int, step: int, steps_per_epoch: int, logs: dict) -> None:
        now = time.monotonic()
        if now - self.last_write < PROGRESS_EVERY_SECONDS and step != steps_per_epoch:
            return
        self.last_write = now
        self.run.report_batch(epoch, step, steps_per_epoch, _finite(logs.get("loss")),
                              _finite(logs.get("accuracy")), self.eta_seconds)  # fmt: skip
        self.cancelled = self.run.cancel_is_requested()

    def on_epoch(self, epoch: int, logs: dict) -> None:
        self.run.log(
            f"epoch {epoch}/{self.run.epochs}: loss {logs.get('loss', 0):.4f} "
            f"accuracy {logs.get('accuracy', 0):.4f} val_accuracy {logs.get('val_accuracy', 0):.4f}"
        )
        self.run.report_epoch(_finite(logs.get("val_accuracy")))

    def on_testing(self) -> None:
        self.run.log("testing and exporting the model")
        self.run.report_testing(self.eta_seconds)

    def on_log(self, message: str) -> None:
        self.run.log(message)

    def should_stop(self) -> bool:
        return self.cancelled


def _finite(value) -> float | None:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if value == value and abs(value) != float("inf") else None


def execute(run_id: int) -> str | None:
    """Run a claimed training run to a final status; returns it (None if not ours)."""
    run = TrainingRun.objects.filter(pk=run_id).first()
    if run is None:
        return None
    if not run.claim(worker_id()):
        if run.status == TrainingRun.Status.RUNNING and run.owner_is_dead:
            # Our message came back because the worker running it died.
            run.finish(TrainingRun.Status.FAILED, error=run.died_message())
        return None
    logger.info("Run %s claimed by %s", run_id, run.worker)
    if run.cancel_requested:
        run.finish(TrainingRun.Status.CANCELLED)
        return TrainingRun.Status.CANCELLED
    out_dir = Path(settings.DIGITS_DATA_DIR) / "runs" / f"run-{run_id}"
    heartbeat = _Heartbeat(run_id)
    heartbeat.start()
    try:
        status = _train_and_register(run, out_dir)
    except progress.TrainingCancelled:
        run.log("cancelled")
        run.finish(TrainingRun.Status.CANCELLED)
        return TrainingRun.Status.CANCELLED
    except Exception as exc:
        logger.exception("Training run %s failed", run_id)
        error = f"{type(exc).__name__}: {exc}\n\n{traceback.format_exc(limit=8)}"
        if disk_full(exc):
            # The run's own files go first: the row that says why needs room too.
            shutil.rmtree(out_dir, ignore_errors=True)
            error = (
                f"The disk is full (no space left under {settings.DIGITS_DATA_DIR}): the "
                "model could not be written. Free some space (old runs' files, exports, "
                f"backups) and start the run again.\n\n{error}"
            )
        elif out_of_memory(exc):
            error = (
                f"Out of {'GPU ' if 'ResourceExhausted' in type(exc).__name__ else ''}memory "
                "while training: try a smaller batch size, a smaller architecture or a "
                f"data limit.\n\n{error}"
            )
        run.finish(TrainingRun.Status.FAILED, error=error[-5000:])
        return TrainingRun.Status.FAILED
    finally:
        heartbeat.stop()
        shutil.rmtree(out_dir, ignore_errors=True)  # the artifacts now live in storage
    return status


def out_of_memory(exc: BaseException) -> bool:
    """Host memory (MemoryError, also NumPy's) or accelerator memory (TensorFlow's
    ResourceExhaustedError), recognised without importing TensorFlow here."""
    return isinstance(exc, MemoryError) or type(exc).__name__ == "ResourceExhaustedError"


class NothingToFineTune(RuntimeError):
    """Fine-tuning starts from the active model's Keras weights, and there are none."""


def initial_model(config: TrainConfig, out_dir: Path) -> tuple[TrainConfig, Path | None]:
    """For a fine-tuning run, the active model's Keras file (copied beside the run)
    and the configuration with its architecture; otherwise ``(config, None)``."""
    if not config.start_from_active:
        return config, None
    active = ModelVersion.active()
    if active is None or not active.keras:
        raise NothingToFineTune(
            "Fine-tuning starts from the active model's Keras weights, and "
            + ("no model is active." if active is None else f"v{active.version} has none.")
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "initial.keras"
    with active.keras.open("rb") as source, open(path, "wb") as target:
        shutil.copyfileobj(source, target)
    if active.architecture in ARCHITECTURE_NAMES:
        config = dataclasses.replace(config, architecture=active.architecture)
    return config, path


def initial_pen_model(config: TrainConfig, out_dir: Path) -> Path | None:
    """For a fine-tuning run, the active version's pen model (copied beside the run),
    if it has one; a version without one gets a pen view trained from new weights."""
    active = ModelVersion.active() if config.start_from_active else None
    if active is None or not active.pen_keras:
        return None
    path = out_dir / "initial-pen.keras"
    with active.pen_keras.open("rb") as source, open(path, "wb") as target:
        shutil.copyfileobj(source, target)
    return path


def _train_and_register(run: TrainingRun, out_dir: Path) -> str:
    config, initial = initial_model(run.config(), out_dir)
    if initial is not None:
        run.log(f"fine-tuning the active model ({config.architecture})")
    device = trainer.configure_device()
    run.report_device(device)
    run.log(f"loading data: {', '.join(config.sources)} ({device})")
    loading = _Loading(run)
    training_data = sources.load_training_data(config, loading)
    run.report_loaded(training_data.manifest)
    skipped = training_data.manifest.get("drawings", {}).get("skipped", [])
    if skipped:
        run.log(
            f"skipped {len(skipped)} unreadable drawing(s) (ids "
            f"{', '.join(str(pk) for pk, _ in skipped[:10])}{'…' if len(skipped) > 10 else ''});"
            " see manage.py check_storage"
        )
    run.log(
        f"training on {len(training_data)} images an epoch, validating on {len(training_data.val)}"
    )
    result = trainer.train(
        config,
        out_dir,
        verbose=0,
        data=training_data,
        callback=_Progress(run),
        initial=initial,
        initial_pen=initial_pen_model(config, out_dir),
    )

    # The active model and the bootstrap, on the same test sets in this same run.
    judged = opinions.test_sets(training_data.tests, result.pen_sets)
    active_digits, bootstrap_digits = opinions.gate_opinions(judged)
    truth = {
        name: data.labels() if isinstance(data, PenSet) else data.y for name, data in judged.items()
    }
    decision = gate.decide(truth, result.predictions, active_digits, bootstrap_digits)
    serving = ModelVersion.active()
    decision.against = serving.version if serving is not None and active_digits else None

    with transaction.atomic():
        # A cancel that arrived while the last epoch, the tests or the export ran is
        # honoured: nothing is registered. The row lock makes it one or the other: a
        # cancel after this commit finds the run finished and says so.
        if run.cancel_is_requested(lock=True):
            raise progress.TrainingCancelled("cancelled before the model was registered")
        version = register_directory(out_dir, activate=False, note=f"training run {run.pk}")
        version.record_verdict(decision.as_dict())
        if decision.passed:
            version.promote(
                by=run.started_by,
                reason=f"passed the gate in training run {run.pk}: {decision.summary}",
            )
        else:
            version.reject(decision.reasons)
        run.record_outcome(version, decision.as_dict())
        run.finish(TrainingRun.Status.SUCCEEDED, epoch=result.metrics["epochs_run"])
    run.log(f"model v{version.version}: {'promoted' if decision.passed else 'rejected'}")
    # Its answers, for the gate of the next run should it be serving then.
    opinions.remember(opinions.version_key(version), judged, result.predictions)
    return TrainingRun.Status.SUCCEEDED
