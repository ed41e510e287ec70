"""Contributed drawings: the dataset people build.

A drawing is kept exactly as the canvas sent it (256×256 RGBA PNG), stored
under its content hash, so better preprocessing can later be replayed over
the whole dataset and a duplicate is recognised for free.
"""

from __future__ import annotations

import hashlib
from collections import Counter

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import IntegrityError, models, transaction

from collector import splits
from collector.checks import (  # noqa: F401  (their home is collector.checks; kept importable here)
    InvalidDrawing,
    require_canvas_png,
    require_png,
    validate_label,
    validate_png,
)
from collector.counts import count_writer, writers_per_split
from collector.storing import (  # noqa: F401  (their home is collector.storing; kept importable here)
    DrawingManager,
    NewDrawing,
    Prediction,
    StorageUnavailable,
    delete_quietly,
    lock_client,
    stored_intact,
    stored_name,
)

# Rows one UPDATE of a bulk relabel names (its IN list).
RELABEL_BATCH = 5000


def drawing_path(instance: Drawing, filename: str) -> str:
    return stored_name(instance.sha256)


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
    # How the drawing looks, blurred and reduced (``collector.likeness``; 98 bytes:
    # the thresholded 28×28 input stored before): a client's near-copies of their
    # own drawings are found by it.
    fingerprint = models.BinaryField(max_length=576, null=True, blank=True, editable=False)
    # What it takes on disk (the PNG and its strokes' JSON), for a client's daily bound.
    stored_bytes = models.PositiveIntegerField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    # When it was last approved (None while pending or rejected): "recently approved".
    approved_at = models.DateTimeField(null=True, blank=True, editable=False, db_index=True)

    objects = DrawingManager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["client", "created_at"], name="drawing_client_recent"),
            # The admin's list at a million drawings: each filter in its order (newest
            # first), the likely mislabels by confidence, and approvals newest first.
            models.Index(fields=["status", "created_at"], name="drawing_status_recent"),
            models.Index(fields=["label", "created_at"], name="drawing_label_recent"),
            models.Index(fields=["split", "created_at"], name="drawing_split_recent"),
            models.Index(fields=["source", "created_at"], name="drawing_source_recent"),
            models.Index(fields=["writer"], name="drawing_writer"),
            models.Index(
                fields=["-predicted_confidence", "-id"],
                name="drawing_disagrees",
                condition=models.Q(predicted_label__isnull=False)
                & ~models.Q(predicted_label=models.F("label")),
            ),
            # Newest approvals first, ties (a bulk approval's) by id: the index's own order.
            models.Index(fields=["status", "approved_at", "id"], name="drawing_approved_order"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(label__gte=0, label__lte=9), name="drawing_label_is_a_digit"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.label} ({self.split}, {self.status}) {self.sha256[:10]}"

    @property
    def writer_key(self) -> str:
        """Who wrote it, as far as is known ("" if not): the imported dataset's
        writer, else the contributing client."""
        if self.writer:
            return f"{self.source}/{self.writer}"[:100]
        return self.client

    def takes_strokes_from(self, new: NewDrawing) -> bool:
        """Whether strokes sent with this same picture may be added to it: a client's
        own pending drawing, or any drawing for staff and imports (no client).
        Never someone else's, and never one staff already reviewed: the strokes
        would decide how an approved drawing is varied for training."""
        if not new.client:
            return True
        return new.client == self.client and self.status == Drawing.Status.PENDING

    @property
    def model_disagrees(self) -> bool:
        return self.predicted_label is not None and self.predicted_label != self.label

    @classmethod
    def relabel_all(cls, queryset: models.QuerySet, label: int) -> list[int]:
        """Relabel every drawing of ``queryset`` that is not ``label`` yet, set-wise in one
        transaction (the admin's bulk action, thousands at a time); the ids that
        changed. Splits stay, and the counters move as :meth:`relabel` moves them."""
        with transaction.atomic():
            changing = queryset.exclude(label=label).select_for_update()
            rows = list(changing.values_list("pk", "label", "split"))
            ids = [pk for pk, _, _ in rows]
            for start in range(0, len(ids), RELABEL_BATCH):
                cls.objects.filter(pk__in=ids[start : start + RELABEL_BATCH]).update(label=label)
            if rows:
                moved = Counter((split, former) for _, former, split in rows)
                SplitCounter.objects.move_many(moved, label)
        return ids

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

    def claim(self, label: int, sha256: str, forced: str | None = None, writer: str = "") -> str:
        """Pick or record a given split for a new drawing and count it: a known
        ``writer``'s drawings all go to that writer's split (``WriterSplit``), so
        the test split holds people the model never saw; the others take the split
        ``splits.choose_split`` picks for their label."""
        return self.claim_many([(label, sha256, forced, writer)])[0]

    def claim_many(self, wanted: list[tuple[int, str, str | None, str]]) -> list[str]:
        """:meth:`claim` for many new drawings at once, as ``(label, sha256, forced,
        writer)``, in order: each label's counter locked once (in label order, as
        concurrent claims lock them) and saved once."""
        assert transaction.get_connection().in_atomic_block, "claim needs a transaction"
        counters = {
            label: self.select_for_update().get_or_create(label=label)[0]
            for label in sorted({label for label, _, _, _ in wanted})
        }
        writers: dict[str, str] = {}
        chosen = []
        for label, sha256, forced, writer in wanted:
            if not forced and writer:
                if writer not in writers:
                    writers[writer] = WriterSplit.objects.split_of(writer)
                forced = writers[writer]
            counter = counters[label]
            counts = {split: getattr(counter, split) for split in splits.SPLITS}
            split = forced or splits.choose_split(counts, sha256)
            setattr(counter, split, counts[split] + 1)
            chosen.append(split)
        for counter in counters.values():
            counter.save(update_fields=list(splits.SPLITS))
        return chosen

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

    def move_many(self, moved: Counter[tuple[str, int]], to_label: int) -> None:
        """Drawings relabelled together, counted by (split, former label), now count
        for ``to_label``: each counter row locked once (in label order, as two bulk
        relabels may run at once), not once per drawing."""
        assert transaction.get_connection().in_atomic_block, "move_many needs a transaction"
        labels = sorted({label for _, label in moved} | {to_label})
        for label in labels:
            self.get_or_create(label=label)
        counters = {c.label: c for c in self.select_for_update().filter(label__in=labels)
                    .order_by("label")}  # fmt: skip
        for (split, label), n in moved.items():
            former = counters[label]
            setattr(former, split, max(0, getattr(former, split) - n))
            target = counters[to_label]
            setattr(target, split, getattr(target, split) + n)
        for counter in counters.values():
            counter.save(update_fields=list(splits.SPLITS))


class WriterSplitManager(models.Manager):
    def split_of(self, writer: str) -> str:
        """The writer's split, chosen at their first drawing by the same largest-deficit
        rule over writers (ties by the writer's hash), and kept for good. Two new
        writers arriving at the same instant may both be given the split one of them
        should have had: the writers' shares are kept to within a writer or two."""
        found = self.filter(writer=writer).values_list("split", flat=True).first()
        if found:
            return found
        counts = writers_per_split()
        split = splits.choose_split(counts, hashlib.sha256(writer.encode()).hexdigest())
        try:
            with transaction.atomic():  # a savepoint: a concurrent first drawing may win
                self.create(writer=writer, split=split)
                count_writer(split)
        except IntegrityError:
            return self.get(writer=writer).split
        return split


class WriterSplit(models.Model):
    """Which split a writer's drawings go to: a contributing client (``Drawing.client``)
    or an imported dataset's writer. The gate's ``drawings-test`` set is then people
    the candidate never trained on, as the pen digits' and UJI's test writers are."""

    writer = models.CharField(max_length=100, unique=True)
    split = models.CharField(max_length=5, choices=Drawing.Split.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = WriterSplitManager()

    def __str__(self) -> str:
        return f"{self.writer}: {self.split}"


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


# Models of this app kept in modules of their own (``export_path``: migrations name it here).
from collector.counts import DrawingCount  # noqa: E402, F401
from collector.export_jobs import DatasetExport, export_path  # noqa: E402, F401
from collector.import_jobs import DatasetImport  # noqa: E402, F401
from collector.model_inputs import ModelInput  # noqa: E402, F401
