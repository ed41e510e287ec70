"""Contributed drawings: the dataset people build.

A drawing is kept exactly as the canvas sent it (256×256 RGBA PNG), stored
under its content hash, so better preprocessing can later be replayed over
the whole dataset and a duplicate is recognised for free.
"""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models, transaction
from django.utils import timezone

from collector import splits


def drawing_path(instance: Drawing, filename: str) -> str:
    return f"drawings/{instance.sha256[:2]}/{instance.sha256}.png"


class Drawing(models.Model):
    class Split(models.TextChoices):
        TRAIN = "train"
        VAL = "val"
        TEST = "test"

    class Status(models.TextChoices):
        PENDING = "pending"
        APPROVED = "approved"
        REJECTED = "rejected"

    image = models.FileField(upload_to=drawing_path, max_length=255)
    # The pen as the page recorded it: strokes of [x, y, t] points (canvas pixels,
    # milliseconds), checked by ``classifier.canvas.parse_strokes``. Training varies
    # them (``training.strokes``); a drawing without them is trained on as a picture.
    strokes = models.JSONField(null=True, blank=True, editable=False)
    sha256 = models.CharField(max_length=64, unique=True)
    label = models.PositiveSmallIntegerField(
        validators=[MinValueValidator(0), MaxValueValidator(9)], db_index=True
    )
    source = models.CharField(max_length=32, default="canvas", db_index=True)
    # For imports: who wrote it in the original dataset, so splits by writer stay possible.
    writer = models.CharField(max_length=64, blank=True)
    predicted_label = models.PositiveSmallIntegerField(null=True, blank=True)
    predicted_confidence = models.FloatField(null=True, blank=True)
    model_version = models.ForeignKey(
        "classifier.ModelVersion", null=True, blank=True, on_delete=models.SET_NULL
    )
    split = models.CharField(max_length=5, choices=Split.choices, editable=False, db_index=True)
    status = models.CharField(
        max_length=8, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    contributor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    # Anonymous contributors are a session key, never a raw IP address.
    session_key = models.CharField(max_length=40, blank=True)
    # Who sent it through the API (``digits_site.clients.client_key``: "user:ID", or
    # "addr:" and a keyed hash of the address), for quotas and for rejecting
    # everything one client sent. Empty for imports.
    client = models.CharField(max_length=64, blank=True, editable=False)
    # The model's 28×28 input, thresholded and packed (``collector.abuse``): a
    # client's near-copies of their own drawings are found by it.
    fingerprint = models.BinaryField(max_length=98, null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    # When it was last approved (None while pending or rejected): "recently approved".
    approved_at = models.DateTimeField(null=True, blank=True, editable=False, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["client", "created_at"], name="drawing_client_recent")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(label__gte=0, label__lte=9), name="drawing_label_is_a_digit"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.label} ({self.split}, {self.status}) {self.sha256[:10]}"

    @property
    def model_disagrees(self) -> bool:
        return self.predicted_label is not None and self.predicted_label != self.label

    def relabel(self, label: int) -> bool:
        """Give the drawing another label; its split stays (the test split stays unseen),
        and the per-label counts that steer new drawings move with it. False when the
        label is already that."""
        if label == self.label:
            return False
        with transaction.atomic():
            SplitCounter.objects.move(self.split, self.label, label)
            self.label = label
            self.save(update_fields=["label"])
        return True


class SplitCounterManager(models.Manager):
    """Counting drawings per label and split, under a row lock, inside the transaction
    that inserts, deletes or relabels the drawing (so a rollback un-counts it too)."""

    def claim(self, label: int, sha256: str, forced: str | None = None) -> str:
        """Pick (``splits.choose_split``) or record a given split for a new drawing
        and count it."""
        assert transaction.get_connection().in_atomic_block, "claim needs a transaction"
        counter, _ = self.select_for_update().get_or_create(label=label)
        counts = {split: getattr(counter, split) for split in splits.SPLITS}
        split = forced or splits.choose_split(counts, sha256)
        setattr(counter, split, counts[split] + 1)
        counter.save(update_fields=[split])
        return split

    def release(self, label: int, split: str) -> None:
        """Un-count a deleted drawing."""
        counter = self.select_for_update().filter(label=label).first()
        if counter is not None and getattr(counter, split) > 0:
            setattr(counter, split, getattr(counter, split) - 1)
            counter.save(update_fields=[split])

    def move(self, split: str, from_label: int, to_label: int) -> None:
        """A relabelled drawing now counts for ``to_label``, in the same split."""
        self.release(from_label, split)
        self.claim(to_label, sha256="", forced=split)


class SplitCounter(models.Model):
    """Per-label split counts, the lock that keeps splits stratified under
    concurrent inserts (rows are locked with SELECT … FOR UPDATE; SQLite's
    immediate transactions serialise writers anyway)."""

    label = models.PositiveSmallIntegerField(primary_key=True)
    train = models.PositiveIntegerField(default=0)
    val = models.PositiveIntegerField(default=0)
    test = models.PositiveIntegerField(default=0)

    objects = SplitCounterManager()

    def __str__(self) -> str:
        return f"{self.label}: {self.train}/{self.val}/{self.test}"


def export_path(instance: DatasetExport, filename: str) -> str:
    return f"exports/{instance.pk}/{filename}"


class DatasetExport(models.Model):
    """A dataset export staff asked for: built by a background worker (a large
    dataset takes longer than a request may), then downloaded from the admin."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        READY = "ready"
        FAILED = "failed"

    fmt = models.CharField("format", max_length=16)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    done = models.PositiveIntegerField(default=0, help_text="drawings read so far")
    total = models.PositiveIntegerField(default=0, help_text="drawings to read")
    drawings = models.PositiveIntegerField(default=0, help_text="drawings in the file")
    file = models.FileField(upload_to=export_path, max_length=255, blank=True)
    size = models.PositiveBigIntegerField(default=0)
    error = models.TextField(blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "dataset export"

    def __str__(self) -> str:
        return f"export {self.pk} ({self.fmt}, {self.status})"

    # Life cycle, as a training run's: each step one conditional UPDATE.

    def claim(self) -> bool:
        """Take a queued export to build; False when someone else has it (or had it)."""
        claimed = DatasetExport.objects.filter(pk=self.pk, status=self.Status.QUEUED).update(
            status=self.Status.RUNNING
        )
        self.refresh_from_db()
        return bool(claimed)

    def report(self, done: int, total: int) -> None:
        """Drawings read so far, of how many."""
        DatasetExport.objects.filter(pk=self.pk).update(done=done, total=total)

    def finish(self, *, drawings: int) -> None:
        """Ready: its file (already saved to storage) can be downloaded."""
        self._end(self.Status.READY, file=self.file.name, size=self.file.size, drawings=drawings)

    def fail(self, error: str) -> None:
        self._end(self.Status.FAILED, error=error[:2000])

    def _end(self, status: str, **fields) -> None:
        DatasetExport.objects.filter(pk=self.pk, status=self.Status.RUNNING).update(
            status=status, finished_at=timezone.now(), **fields
        )
        self.refresh_from_db()
