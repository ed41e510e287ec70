"""Contributed drawings: the dataset people build.

A drawing is kept exactly as the canvas sent it (256×256 RGBA PNG), stored
under its content hash, so better preprocessing can later be replayed over
the whole dataset and a duplicate is recognised for free.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import IntegrityError, connection, models, transaction
from django.utils import timezone

from classifier import canvas, preprocessing
from collector import likeness, model_inputs, splits
from collector.checks import (  # noqa: F401  (their home is collector.checks; kept importable here)
    InvalidDrawing,
    require_canvas_png,
    require_png,
    validate_label,
    validate_png,
)
from collector.counts import count_writer, writers_per_split

logger = logging.getLogger(__name__)

# Rows one UPDATE of a bulk relabel names (its IN list).
RELABEL_BATCH = 5000


class StorageUnavailable(RuntimeError):
    """The drawing could not be written; nothing was kept."""


@dataclass(frozen=True)
class Prediction:
    """The model's opinion of a drawing when it arrived."""

    digit: int
    confidence: float
    model_version_id: int | None


@dataclass(frozen=True)
class NewDrawing:
    """A drawing someone asks to store (:meth:`DrawingManager.add`): the picture, its
    label and the pen as drawn; where it came from; and, for imports, the split and
    review status it already has."""

    data: bytes  # the PNG as sent
    label: object  # checked by validate_label
    strokes: list[np.ndarray] | None = None  # ``canvas.parse_strokes``' output
    source: str = "canvas"
    writer: str = ""
    contributor: object = None  # the signed-in user, if any
    session_key: str = ""  # an anonymous contributor's session
    client: str = ""  # who sent it (``digits_site.clients.client_key``), for ``abuse``
    prediction: Prediction | None = None
    split: str | None = None
    status: str | None = None
    model_input: np.ndarray | None = None  # the caller's own preprocessing of ``data``
    ink: np.ndarray | None = None  # the caller's own ``preprocessing.decode_ink(data)``
    # Raises if the client may not add it (``collector.abuse``): called inside the
    # insert's transaction, with the client's lock held, so a burst cannot overshoot.
    admit: Callable[[int], None] | None = None  # the client's checks, with stored_bytes


def stored_intact(name: str, sha256: str) -> bool:
    """Whether storage holds ``name`` with exactly the content whose hash is ``sha256``."""
    try:
        with default_storage.open(name, "rb") as handle:
            return hashlib.file_digest(handle, "sha256").hexdigest() == sha256
    except (FileNotFoundError, ValueError):
        return False


def delete_quietly(name: str) -> None:
    """Remove a file no row points at; a failure is logged (``check_storage`` finds it)."""
    try:
        default_storage.delete(name)
    except OSError:
        logger.exception("Could not remove %s after a failed insert", name)


def lock_client(client: str) -> None:
    """Until the transaction ends, no other transaction adds for ``client``: on
    PostgreSQL a transaction-scoped advisory lock on the client's name; SQLite's
    transactions here are IMMEDIATE, so writers are one at a time already."""
    if client and connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [client])


def drawing_path(instance: Drawing, filename: str) -> str:
    return f"drawings/{instance.sha256[:2]}/{instance.sha256}.png"


class DrawingManager(models.Manager):
    def add(self, new: NewDrawing) -> tuple[Drawing, bool]:
        """Store a drawing, or return the existing one with the same content.

        Returns ``(drawing, created)``. Raises :class:`InvalidDrawing`,
        ``PreprocessingError`` (bad image), ``canvas.StrokesDoNotMatch`` (strokes
        that do not draw the picture) or :class:`StorageUnavailable`. Strokes are
        stored in the same row, so drawing and strokes arrive together or not at
        all; a drawing already stored without strokes gains them only from whoever
        sent it, while it waits for review (:meth:`Drawing.takes_strokes_from`).
        """
        label = validate_label(new.label)
        if new.split is not None and new.split not in splits.SPLITS:
            raise InvalidDrawing(f"Unknown split {new.split!r}.")
        status = new.status
        if status is not None and status not in Drawing.Status.values:
            raise InvalidDrawing(f"Unknown status {status!r}.")
        validate_png(new.data, new.model_input)
        ink = preprocessing.decode_ink(new.data) if new.ink is None else new.ink
        if new.strokes:
            canvas.check_strokes_match(new.strokes, ink)
        sha = hashlib.sha256(new.data).hexdigest()
        stored_strokes = canvas.strokes_as_json(new.strokes) if new.strokes else None
        existing = self.filter(sha256=sha).first()
        if existing is not None:
            if stored_strokes and not existing.strokes and existing.takes_strokes_from(new):
                self.filter(pk=existing.pk, strokes__isnull=True).update(strokes=stored_strokes)
                existing.refresh_from_db(fields=["strokes"])
            return existing, False
        if status is None:
            auto = settings.DIGITS_AUTO_APPROVE
            status = Drawing.Status.APPROVED if auto else Drawing.Status.PENDING
        contributor = new.contributor
        drawing = Drawing(
            sha256=sha,
            stored_bytes=len(new.data) + len(stored_strokes or ""),
            label=label,
            source=new.source,
            writer=new.writer,
            contributor=contributor if getattr(contributor, "is_authenticated", False) else None,
            session_key=new.session_key or "",
            client=new.client,
            fingerprint=likeness.fingerprint(ink),
            status=status,
            approved_at=timezone.now() if status == Drawing.Status.APPROVED else None,
            strokes=stored_strokes,
        )
        if new.prediction is not None:
            drawing.predicted_label = new.prediction.digit
            drawing.predicted_confidence = new.prediction.confidence
            drawing.model_version_id = new.prediction.model_version_id
        try:
            self._store(drawing, new.data, new.split, new.admit, new.model_input)
        except IntegrityError:
            # A concurrent request stored the same drawing first.
            winner = self.filter(sha256=sha).first()
            if winner is None:
                raise
            return winner, False
        except OSError as exc:
            logger.exception("Could not store drawing %s", sha)
            message = "The drawing could not be saved right now; try again."
            raise StorageUnavailable(message) from exc
        return drawing, True

    @staticmethod
    def _store(
        drawing: Drawing, data: bytes, split: str | None,
        admit: Callable[[int], None] | None = None,
        model_input: np.ndarray | None = None,
    ) -> None:  # fmt: skip
        """The file and the row, with the drawing's split, or neither; ``admit`` (the
        client's quotas and near-copies) checked in this transaction, under its lock.

        ``model_input`` (the caller's preprocessing) is kept beside the row. An earlier
        attempt that died before its row may have left the file. It is
        reused only if its content is what its name (the hash) says; anything else
        (a truncated write from before writes were atomic, a damaged disk) is replaced.
        """
        name = drawing_path(drawing, "")
        wrote_file = False
        try:
            with transaction.atomic():
                if admit is not None:
                    lock_client(drawing.client)
                    admit(drawing.stored_bytes)
                counters = SplitCounter.objects
                drawing.split = counters.claim(
                    drawing.label, drawing.sha256, forced=split, writer=drawing.writer_key
                )
                if not stored_intact(name, drawing.sha256):
                    if default_storage.exists(name):
                        default_storage.delete(name)  # damaged: its name is this content's
                    name = default_storage.save(name, ContentFile(data))
                    wrote_file = True
                drawing.image.name = name
                drawing.save()
                if model_input is not None:
                    model_inputs.keep(drawing.pk, model_input)
        except BaseException:
            if wrote_file:  # no row will point at it
                delete_quietly(name)
            raise


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
        assert transaction.get_connection().in_atomic_block, "claim needs a transaction"
        counter, _ = self.select_for_update().get_or_create(label=label)
        counts = {split: getattr(counter, split) for split in splits.SPLITS}
        if not forced and writer:
            forced = WriterSplit.objects.split_of(writer)
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
