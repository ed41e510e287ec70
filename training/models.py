"""A training run: one row, one owner, a state that is never left dangling."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

LOG_TAIL_LINES = 200
# The names in training.architectures, without importing Keras: this module is
# loaded by every web process, which must never import TensorFlow.
ARCHITECTURE_NAMES = ("digitnet", "canvas-cnn", "mlp", "kaggle-cnn", "vgg-bn", "deep-bn")
DEFAULT_ARCHITECTURE = "digitnet"


class TrainingRun(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        CANCELLED = "cancelled"

    FINISHED = (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED)

    # Configuration.
    architecture = models.CharField(
        max_length=32,
        choices=[(name, name) for name in ARCHITECTURE_NAMES],
        default=DEFAULT_ARCHITECTURE,
    )
    epochs = models.PositiveSmallIntegerField(default=20)
    batch_size = models.PositiveSmallIntegerField(default=128)
    learning_rate = models.FloatField(default=3e-3)
    augment = models.BooleanField(default=True)
    use_mnist = models.BooleanField(default=True)
    use_pendigits = models.BooleanField(default=True)
    use_drawings = models.BooleanField(default=True, help_text="approved contributed drawings")
    kaggle_csv = models.CharField(
        max_length=500, blank=True, help_text="path to a Kaggle train CSV"
    )
    limit = models.PositiveIntegerField(
        null=True, blank=True, help_text="cap each base dataset (quick runs)"
    )
    seed = models.PositiveIntegerField(default=1234)
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

    # Progress, written by the worker at most every couple of seconds.
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

    def sources(self) -> tuple[str, ...]:
        chosen = [
            name
            for name, used in (
                ("mnist", self.use_mnist),
                ("pendigits", self.use_pendigits),
                ("drawings", self.use_drawings),
            )
            if used
        ]
        if self.kaggle_csv:
            chosen.append("kaggle")
        return tuple(chosen)

    def append_log(self, line: str) -> None:
        stamp = timezone.now().strftime("%H:%M:%S")
        lines = [*self.log_tail.splitlines(), f"{stamp} {line}"][-LOG_TAIL_LINES:]
        self.log_tail = "\n".join(lines)
