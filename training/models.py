"""A training run: one row, one owner, a state that is never left dangling.

The row carries its own behaviour (Healthchecks style): a worker ``claim``s it
atomically, every way out ``finish``es it once, staff ``cancel`` it, and
``TrainingRun.objects.fail_orphaned()`` ends the runs whose worker is gone.
"""

from __future__ import annotations

import math
import os
import socket
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone

from training.config import ARCHITECTURE_NAMES, DEFAULTS, RUN_FIELDS, TrainConfig, run_fields
from training.recipes import RECIPES

LOG_TAIL_LINES = 200
_DEFAULT = run_fields(DEFAULTS)


def worker_id() -> str:
    """This process, as a run's owner: ``host:pid``."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RunFinished(ValueError):
    """The run has already ended; there is nothing left to cancel."""


class RunNotFinished(ValueError):
    """The run is queued or running; it cannot be started again yet."""


class TrainingRunQuerySet(models.QuerySet):
    def fail_orphaned(self) -> int:
        """Runs whose worker is gone end ``failed`` with a reason: a dead process on this
        host, or any worker (on any machine) that has sent no heartbeat for
        ``DIGITS_RUN_STALE_SECONDS``. Called when a worker starts and when staff look
        at runs, so a vanished machine is noticed in minutes, not at redelivery."""
        now = timezone.now()
        stale_before = now - timedelta(seconds=settings.DIGITS_RUN_STALE_SECONDS)
        failed = 0
        for run in self.filter(status=TrainingRun.Status.RUNNING):
            if run.owner_is_dead:
                failed += run.finish(TrainingRun.Status.FAILED, error=run.died_message())
            elif run.heartbeat_at is not None and run.heartbeat_at < stale_before:
                minutes = (now - run.heartbeat_at).total_seconds() / 60
                failed += run.finish(
                    TrainingRun.Status.FAILED,
                    error=f"No heartbeat from its worker ({run.worker}) for {minutes:.0f} "
                    "minutes: the machine or process running it is gone.",
                )
        return failed


class TrainingRun(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        CANCELLED = "cancelled"

    class Phase(models.TextChoices):
        """What a running run does: loads its data (with counts), fits, then tests and
        exports the model."""

        LOADING = "loading"
        TRAINING = "training"
        TESTING = "testing"

    FINISHED = (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED)

    # Configuration: the fields of ``training.config.RUN_FIELDS``, defaults from there.
    architecture = models.CharField(
        max_length=32,
        choices=[(name, name) for name in ARCHITECTURE_NAMES],
        default=_DEFAULT["architecture"],
    )
    recipe = models.CharField(
        max_length=32,
        choices=[(name, f"{name} ({r.project})") for name, r in RECIPES.items()],
        default=_DEFAULT["recipe"],
        help_text="how it trains: optimizer, schedule, callbacks, augmentation ranges",
    )
    epochs = models.PositiveSmallIntegerField(default=_DEFAULT["epochs"])
    batch_size = models.PositiveSmallIntegerField(default=_DEFAULT["batch_size"])
    learning_rate = models.FloatField(default=_DEFAULT["learning_rate"])
    augment = models.BooleanField(default=_DEFAULT["augment"])
    use_mnist = models.BooleanField(default=_DEFAULT["use_mnist"])
    use_pendigits = models.BooleanField(default=_DEFAULT["use_pendigits"])
    use_drawings = models.BooleanField(
        default=_DEFAULT["use_drawings"], help_text="approved contributed drawings"
    )
    use_emnist = models.BooleanField(
        default=_DEFAULT["use_emnist"], help_text="EMNIST Digits (DIGITS_EMNIST_DIR)"
    )
    use_usps = models.BooleanField(
        default=_DEFAULT["use_usps"], help_text="USPS scans (DIGITS_USPS_DIR)"
    )
    use_ujipen = models.BooleanField(
        default=_DEFAULT["use_ujipen"],
        help_text="UJI pen digits: 60 continental writers (DIGITS_UJIPEN_DIR)",
    )
    kaggle_csv = models.CharField(
        max_length=500, blank=True, help_text="path to a Kaggle train CSV"
    )
    image_folder = models.CharField(
        max_length=500, blank=True, help_text="a folder of images, one sub-folder per digit"
    )
    limit = models.PositiveIntegerField(
        null=True, blank=True, help_text="cap each base dataset (quick runs)"
    )
    seed = models.PositiveIntegerField(default=_DEFAULT["seed"])
    start_from_active = models.BooleanField(
        default=_DEFAULT["start_from_active"],
        help_text="fine-tune: begin from the active model's weights",
    )
    drawings_share = models.FloatField(
        default=_DEFAULT["drawings_share"],
        help_text="approved drawings' share of each batch (once there are enough)",
    )
    correction_weight = models.FloatField(
        default=_DEFAULT["correction_weight"],
        help_text="how much more often a correction is drawn than another drawing",
    )
    variants = models.PositiveSmallIntegerField(
        default=_DEFAULT["variants"],
        help_text="stroke-space variants rendered per pen digit and drawing (1 to 64)",
    )
    preset = models.CharField(max_length=32, blank=True)

    # Ownership and state.
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    status = models.CharField(
        max_length=10, choices=Status.choices, default=Status.QUEUED, db_index=True
    )
    cancel_requested = models.BooleanField(default=False)
    worker = models.CharField(max_length=255, blank=True, help_text="host:pid that claimed it")
    device = models.CharField(max_length=255, blank=True)

    # Progress, written by the worker at most every couple of seconds. Before the
    # first epoch the run loads its data: ``phase`` says which step, with counts.
    phase = models.CharField(max_length=16, blank=True, choices=Phase.choices)
    phase_detail = models.CharField(max_length=200, blank=True, help_text="what loading does now")
    phase_done = models.PositiveIntegerField(default=0)
    phase_total = models.PositiveIntegerField(default=0)
    epoch = models.PositiveSmallIntegerField(default=0)
    step = models.PositiveIntegerField(default=0)
    steps_per_epoch = models.PositiveIntegerField(default=0)
    loss = models.FloatField(null=True, blank=True)
    accuracy = models.FloatField(null=True, blank=True)
    val_accuracy = models.FloatField(null=True, blank=True)
    eta_seconds = models.FloatField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    log_tail = models.TextField(blank=True)
    error = models.TextField(blank=True)
    manifest = models.JSONField(default=dict, blank=True)
    gate = models.JSONField(default=dict, blank=True, help_text="the gate's decision and reasons")

    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    model_version = models.OneToOneField(
        "classifier.ModelVersion",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="training_run",
    )

    objects = TrainingRunQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"run {self.pk} ({self.architecture}, {self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in self.FINISHED

    @property
    def progress(self) -> float:
        """Fraction done, 0..1, for progress bars."""
        if self.status == self.Status.SUCCEEDED:
            return 1.0
        total = self.epochs * max(self.steps_per_epoch, 1)
        done = max(self.epoch - 1, 0) * max(self.steps_per_epoch, 1) + self.step
        return min(done / total, 1.0) if total else 0.0

    @property
    def progress_percent(self) -> int | None:
        """The progress bar's value: the loading step's counts while loading (None for
        a step without counts: an indeterminate bar), 100 while testing, else the
        share of training steps done."""
        if self.status == self.Status.RUNNING and self.phase == self.Phase.LOADING:
            total = self.phase_total
            return math.floor(100 * self.phase_done / total) if total else None
        if self.status == self.Status.RUNNING and self.phase == self.Phase.TESTING:
            return 100
        return round(self.progress * 100)

    @property
    def progress_text(self) -> str:
        """What the run is doing, in words, as the admin, the API and ``retrain`` show
        it: the loading step with its counts, the epoch, or testing; with the time
        left while it runs."""
        running = self.status == self.Status.RUNNING
        if running and self.phase == self.Phase.LOADING:
            counts = f" {self.phase_done:,} of {self.phase_total:,}" if self.phase_total else ""
            line = f"Loading data: {self.phase_detail}{counts}"
        elif running and self.phase == self.Phase.TESTING:
            line = "Training done · testing and exporting the model"
        else:
            epoch = f" · epoch {self.epoch} of {self.epochs}" if self.steps_per_epoch else ""
            line = f"{self.progress_percent}%{epoch}"
        if running and self.eta_seconds:
            seconds = math.ceil(self.eta_seconds)
            left = f"{int(seconds / 60 + 0.5)} min" if seconds >= 90 else f"{seconds} s"
            line += f" · about {left} left"
        return line

    def settings_again(self) -> dict:
        """The fields a new run needs to train exactly as this one did: how a run that
        failed (its worker died, the broker went away) is started again."""
        if not self.is_finished:
            raise RunNotFinished(
                f"Run {self.pk} is still {self.status}; it can run again once it ends."
            )
        return {"preset": self.preset, **{name: getattr(self, name) for name in RUN_FIELDS}}

    def config(self) -> TrainConfig:
        """What this run trains (raises ``ConfigError`` for a row no form would accept)."""
        return TrainConfig.from_run_fields(**{name: getattr(self, name) for name in RUN_FIELDS})

    # Life cycle: each step is one conditional UPDATE, so two processes can never
    # both own a run or both end it.

    def claim(self, worker: str) -> bool:
        """Take a queued run for ``worker``; False when it is not queued (any more)."""
        now = timezone.now()
        claimed = TrainingRun.objects.filter(pk=self.pk, status=self.Status.QUEUED).update(
            status=self.Status.RUNNING, started_at=now, heartbeat_at=now, worker=worker
        )
        self.refresh_from_db()
        return bool(claimed)

    def finish(self, status: str, **fields) -> bool:
        """End the run with ``status`` (and ``fields``) unless it has already ended."""
        ended = (
            TrainingRun.objects.filter(pk=self.pk)
            .exclude(status__in=self.FINISHED)
            .update(status=status, finished_at=timezone.now(), **fields)
        )
        if ended:
            self.refresh_from_db()
        return bool(ended)

    def cancel(self) -> None:
        """A queued run is cancelled at once; a running one stops at its next batch.
        Raises :class:`RunFinished` for a run that has already ended."""
        requested = (
            TrainingRun.objects.filter(pk=self.pk)
            .exclude(status__in=self.FINISHED)
            .update(cancel_requested=True)
        )
        if not requested:  # ended already (a run that registered its model stays so)
            self.refresh_from_db(fields=["status"])
            raise RunFinished(f"Run {self.pk} has already finished ({self.status}).")
        # No worker has claimed it yet: it ends now, and a later claim finds nothing.
        TrainingRun.objects.filter(pk=self.pk, status=self.Status.QUEUED).update(
            status=self.Status.CANCELLED, finished_at=timezone.now()
        )
        self.refresh_from_db()

    def cancel_is_requested(self, *, lock: bool = False) -> bool:
        """Whether staff asked this run to stop, read from the row now; with ``lock``,
        the row stays locked to the end of the transaction, so a cancel cannot slip in
        between this answer and what the caller does with it."""
        rows = TrainingRun.objects.filter(pk=self.pk, cancel_requested=True)
        return (rows.select_for_update() if lock else rows).exists()

    # Progress, as the worker reports it (each a single UPDATE of the fields it names:
    # the row is also written by staff cancelling it, never read-modify-written).

    def _report(self, **fields) -> None:
        TrainingRun.objects.filter(pk=self.pk).update(**fields)
        for name, value in fields.items():
            setattr(self, name, value)

    def beat(self) -> None:
        """Still alive (the heartbeat), while it runs."""
        TrainingRun.objects.filter(pk=self.pk, status=self.Status.RUNNING).update(
            heartbeat_at=timezone.now()
        )

    def report_device(self, device: str) -> None:
        self._report(device=device)

    def report_loading(self, step: str, done: int, total: int, eta: float | None) -> None:
        self._report(phase=self.Phase.LOADING, phase_detail=step[:200], phase_done=done,
                     phase_total=total, eta_seconds=eta, heartbeat_at=timezone.now())  # fmt: skip

    def report_loaded(self, manifest: dict) -> None:
        """The data is loaded (``manifest`` says which): training begins."""
        self._report(phase=self.Phase.TRAINING, phase_detail="", phase_done=0, phase_total=0,
                     eta_seconds=None, manifest=manifest)  # fmt: skip

    def report_batch(self, epoch: int, step: int, steps_per_epoch: int, loss: float | None,
                     accuracy: float | None, eta: float | None) -> None:  # fmt: skip
        self._report(epoch=epoch, step=step, steps_per_epoch=steps_per_epoch, loss=loss,
                     accuracy=accuracy, eta_seconds=eta, heartbeat_at=timezone.now())  # fmt: skip

    def report_epoch(self, val_accuracy: float | None) -> None:
        self._report(val_accuracy=val_accuracy)

    def report_testing(self, eta: float | None) -> None:
        self._report(phase=self.Phase.TESTING, eta_seconds=eta, heartbeat_at=timezone.now())

    def record_outcome(self, model_version, gate: dict) -> None:
        """The registered version and the gate's decision on it."""
        self._report(model_version=model_version, gate=gate)

    def log(self, line: str) -> None:
        """Append a time-stamped line to the log staff watch (the last 200 are kept)."""
        self.refresh_from_db(fields=["log_tail"])
        stamp = timezone.now().strftime("%H:%M:%S")
        lines = [*self.log_tail.splitlines(), f"{stamp} {line}"][-LOG_TAIL_LINES:]
        self.log_tail = "\n".join(lines)
        TrainingRun.objects.filter(pk=self.pk).update(log_tail=self.log_tail)

    @property
    def owner_is_dead(self) -> bool:
        """True when the run's owner was a process on this host that no longer exists."""
        host, _, pid = self.worker.rpartition(":")
        return host == socket.gethostname() and pid.isdigit() and not _pid_alive(int(pid))

    def died_message(self) -> str:
        return f"The worker running it ({self.worker}) died: killed, out of memory or lost."
