"""Storing drawings: one as a contribution arrives, or many at once as an import
brings them, by the same checks and into the same layout (a file named by the
picture's hash, a row, its split counted, its model input kept beside it).

A contribution is one drawing in one transaction, with its client's quotas
checked under the client's lock (:meth:`DrawingManager.add`). An import is
hundreds: checked one by one as a contribution is, then stored together
(:meth:`DrawingManager.add_many`, :meth:`DrawingManager.store_many`): the files
written first, then one transaction that counts every split with each label's
counter locked once, inserts the rows in one statement and keeps their inputs in
another. Per drawing that was a lookup, two statements for the counter, an
insert and a commit; at a million drawings the statements were the import.

Models are reached through the manager's own model and Django's app registry,
so ``collector.models`` can import this module without a cycle.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from django.apps import apps
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import DatabaseError, IntegrityError, connection, models, transaction
from django.dispatch import Signal
from django.utils import timezone

from classifier import canvas, preprocessing
from collector import likeness, model_inputs, splits
from collector.checks import InvalidDrawing, validate_label, validate_png
from digits_site.refusals import Refused

logger = logging.getLogger(__name__)

# Sent once per :meth:`DrawingManager.store_many` that stored drawings (after its
# transaction commits), with ``drawings``: a bulk insert sends no ``post_save``,
# and training prepares new drawings when it hears of them (``training.signals``).
stored_in_bulk = Signal()

# What refuses one drawing of many (the others are stored): its own bad content.
REFUSALS = (InvalidDrawing, Refused)


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


def stored_name(sha256: str) -> str:
    """Where a picture is stored: named by its content's hash."""
    return f"drawings/{sha256[:2]}/{sha256}.png"


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


def _write_file(sha256: str, data: bytes) -> tuple[str, bool]:
    """The picture in storage under its hash: ``(name, written now)``. A file an
    earlier attempt left (one that died before its row) is reused only if its content
    is what its name says; anything else (a truncated write from before writes were
    atomic, a damaged disk) is replaced."""
    name = stored_name(sha256)
    if stored_intact(name, sha256):
        return name, False
    if default_storage.exists(name):
        default_storage.delete(name)  # damaged: its name is this content's
    return default_storage.save(name, ContentFile(data)), True


class DrawingManager(models.Manager):
    def add(self, new: NewDrawing) -> tuple[models.Model, bool]:
        """Store a drawing, or return the existing one with the same content.

        Returns ``(drawing, created)``. Raises :class:`InvalidDrawing`,
        ``PreprocessingError`` (bad image), ``canvas.StrokesDoNotMatch`` (strokes
        that do not draw the picture) or :class:`StorageUnavailable`. Strokes are
        stored in the same row, so drawing and strokes arrive together or not at
        all; a drawing already stored without strokes gains them only from whoever
        sent it, while it waits for review (``Drawing.takes_strokes_from``).
        """
        drawing = self._prepare(new)
        existing = self.filter(sha256=drawing.sha256).first()
        if existing is not None:
            stored_strokes = drawing.strokes
            if stored_strokes and not existing.strokes and existing.takes_strokes_from(new):
                self.filter(pk=existing.pk, strokes__isnull=True).update(strokes=stored_strokes)
                existing.refresh_from_db(fields=["strokes"])
            return existing, False
        try:
            self._store(drawing, new.data, new.split, new.admit, new.model_input)
        except IntegrityError:
            # A concurrent request stored the same drawing first.
            winner = self.filter(sha256=drawing.sha256).first()
            if winner is None:
                raise
            return winner, False
        except OSError as exc:
            logger.exception("Could not store drawing %s", drawing.sha256)
            message = "The drawing could not be saved right now; try again."
            raise StorageUnavailable(message) from exc
        return drawing, True

    def add_many(self, news: Sequence[NewDrawing]) -> list[tuple[models.Model, bool] | Exception]:
        """Many drawings (an import's batch), each checked as :meth:`add` checks it:
        for each, ``(drawing, created)`` or the refusal that :meth:`add` would have
        raised (the others are stored all the same). The new ones are stored together
        by :meth:`store_many`; one already stored, or twice in the batch, is answered
        by :meth:`add` after them (it may gain the strokes it lacked). A client's
        quotas are :meth:`add`'s alone: a drawing with ``admit`` goes through it.
        Raises :class:`StorageUnavailable` when the disk refuses the batch."""
        outcomes: list = [None] * len(news)
        fresh: dict[str, int] = {}  # each new picture's first place in the batch
        rows: dict[int, models.Model] = {}
        for i, new in enumerate(news):
            try:
                rows[i] = self._prepare(new)
            except REFUSALS as exc:
                outcomes[i] = exc
                continue
            if new.admit is None:
                fresh.setdefault(rows[i].sha256, i)
        stored = set(self.filter(sha256__in=list(fresh)).values_list("sha256", flat=True))
        places = [i for sha, i in fresh.items() if sha not in stored]
        try:
            self.store_many(
                [rows[i] for i in places],
                [news[i].data for i in places],
                forced=[news[i].split for i in places],
                inputs=[news[i].model_input for i in places],
            )
        except IntegrityError:  # a contribution stored one of them meanwhile
            places = []
        except OSError as exc:
            logger.exception("Could not store %d drawings", len(places))
            raise StorageUnavailable("The drawings could not be saved right now.") from exc
        for i in places:
            outcomes[i] = (rows[i], True)
        for i, new in enumerate(news):
            if outcomes[i] is None:
                try:
                    outcomes[i] = self.add(new)
                except REFUSALS as exc:
                    outcomes[i] = exc
        return outcomes

    def store_many(
        self,
        drawings: Sequence[models.Model],
        data: Sequence[bytes],
        *,
        forced: Sequence[str | None] | None = None,
        inputs: Sequence[np.ndarray | None] | None = None,
    ) -> list[models.Model]:
        """New drawings (none stored yet) with their pictures, all or none: the files
        first (outside any lock), then in one transaction each one's split (``forced``,
        or its writer's, or the one its label needs), the rows in one ``INSERT`` and
        the model inputs given (``inputs``) in another. Files written here are removed
        again if the transaction fails (an ``IntegrityError`` if one was stored
        meanwhile). Returns the drawings, saved."""
        if not drawings:
            return []
        forced = forced or [None] * len(drawings)
        inputs = inputs or [None] * len(drawings)
        written = []
        try:
            for drawing, picture in zip(drawings, data, strict=True):
                drawing.image.name, wrote = _write_file(drawing.sha256, picture)
                if wrote:
                    written.append(drawing.image.name)
            with transaction.atomic():
                counters = apps.get_model("collector", "SplitCounter").objects
                claimed = counters.claim_many(
                    [(d.label, d.sha256, split, d.writer_key) for d, split in zip(
                        drawings, forced, strict=True)]
                )  # fmt: skip
                for drawing, split in zip(drawings, claimed, strict=True):
                    drawing.split = split
                saved = self.bulk_create(drawings)
                model_inputs.keep_many(
                    [(d.pk, x) for d, x in zip(saved, inputs, strict=True) if x is not None]
                )
                if any(d.status != self.model.Status.REJECTED for d in saved):
                    transaction.on_commit(
                        lambda: stored_in_bulk.send(sender=self.model, drawings=saved)
                    )
        except BaseException:
            self._forget(written)
            raise
        return saved

    def _forget(self, written: list[str]) -> None:
        """Remove the files a failed attempt wrote, but not one a row points at: a
        contribution of the same picture, arriving meanwhile, may have found the file
        whole and taken it (the insert that failed was the one that lost to it)."""
        try:
            taken = set(self.filter(image__in=written).values_list("image", flat=True))
        except DatabaseError:  # the database is gone: the files go, as no row can be asked
            taken = set()
        for name in written:
            if name not in taken:
                delete_quietly(name)

    def _prepare(self, new: NewDrawing) -> models.Model:
        """The row ``new`` would be, every check passed (not saved, no split yet)."""
        drawing_class = self.model
        label = validate_label(new.label)
        if new.split is not None and new.split not in splits.SPLITS:
            raise InvalidDrawing(f"Unknown split {new.split!r}.")
        status = new.status
        if status is not None and status not in drawing_class.Status.values:
            raise InvalidDrawing(f"Unknown status {status!r}.")
        validate_png(new.data, new.model_input)
        ink = preprocessing.decode_ink(new.data) if new.ink is None else new.ink
        if new.strokes:
            canvas.check_strokes_match(new.strokes, ink)
        stored_strokes = canvas.strokes_as_json(new.strokes) if new.strokes else None
        if status is None:
            auto = settings.DIGITS_AUTO_APPROVE
            status = drawing_class.Status.APPROVED if auto else drawing_class.Status.PENDING
        contributor = new.contributor
        drawing = drawing_class(
            sha256=hashlib.sha256(new.data).hexdigest(),
            stored_bytes=len(new.data) + len(stored_strokes or ""),
            label=label,
            source=new.source,
            writer=new.writer,
            contributor=contributor if getattr(contributor, "is_authenticated", False) else None,
            session_key=new.session_key or "",
            client=new.client,
            fingerprint=likeness.fingerprint(ink),
            status=status,
            approved_at=timezone.now() if status == drawing_class.Status.APPROVED else None,
            strokes=stored_strokes,
        )
        if new.prediction is not None:
            drawing.predicted_label = new.prediction.digit
            drawing.predicted_confidence = new.prediction.confidence
            drawing.model_version_id = new.prediction.model_version_id
        return drawing

    def _store(
        self, drawing: models.Model, data: bytes, split: str | None,
        admit: Callable[[int], None] | None = None,
        model_input: np.ndarray | None = None,
    ) -> None:  # fmt: skip
        """The file and the row, with the drawing's split, or neither; ``admit`` (the
        client's quotas and near-copies) checked in this transaction, under its lock.
        ``model_input`` (the caller's preprocessing) is kept beside the row."""
        wrote_file, name = False, stored_name(drawing.sha256)
        try:
            with transaction.atomic():
                if admit is not None:
                    lock_client(drawing.client)
                    admit(drawing.stored_bytes)
                counters = apps.get_model("collector", "SplitCounter").objects
                drawing.split = counters.claim(
                    drawing.label, drawing.sha256, forced=split, writer=drawing.writer_key
                )
                name, wrote_file = _write_file(drawing.sha256, data)
                drawing.image.name = name
                drawing.save()
                if model_input is not None:
                    model_inputs.keep(drawing.pk, model_input)
        except BaseException:
            self._forget([name] if wrote_file else [])
            raise
