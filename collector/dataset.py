"""Adding drawings to the dataset, and what the dataset looks like.

``add_drawing`` is the one way in (API, pages, imports): it validates, dedupes
by content hash, assigns the split, and writes file and row together or not at
all.
"""

from __future__ import annotations

import hashlib
import io
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.db.models import Count
from django.utils import timezone
from PIL import Image

from classifier import canvas, preprocessing, serving
from collector import abuse, splits
from collector.models import Drawing, SplitCounter, drawing_path

logger = logging.getLogger(__name__)


class InvalidDrawing(ValueError):
    """The drawing cannot be stored; the message is for the contributor."""

    code = "invalid_drawing"


class StorageUnavailable(RuntimeError):
    """The drawing could not be written; nothing was kept."""


@dataclass(frozen=True)
class Prediction:
    digit: int
    confidence: float
    model_version_id: int | None


def predict_quietly(model_input: np.ndarray) -> Prediction | None:
    """The model's opinion of a contribution (what makes likely mislabels findable);
    contributing never fails for lack of it."""
    try:
        verdicts = serving.classify(model_input[None])
    except Exception:
        logger.warning("No prediction stored with a contribution", exc_info=True)
        return None
    digit = int(verdicts.digits[0])
    return Prediction(digit, float(verdicts.probabilities[0, digit]), verdicts.model_version_id)


def validate_label(label) -> int:
    """An integer 0-9, or a one-character ASCII digit string: nothing else (not the
    superscript, circled, Arabic-Indic or full-width digits ``str.isdigit`` lets
    through, which ``int`` either refuses or reads as another number)."""
    if isinstance(label, str) and len(label) == 1 and label in "0123456789":
        return int(label)
    if isinstance(label, int) and not isinstance(label, bool) and 0 <= label <= 9:
        return label
    raise InvalidDrawing("label must be a digit from 0 to 9.")


def validate_png(data: bytes, model_input: np.ndarray | None = None) -> np.ndarray:
    """Stored drawings are PNGs that preprocessing accepts (so training can use them);
    their model input. ``model_input``: the caller's own preprocessing of ``data``,
    which proves it accepted, so a drawing is preprocessed once."""
    if model_input is None:
        # Raises PreprocessingError with a clear message.
        model_input = preprocessing.to_model_input(data)
    if Image.open(io.BytesIO(data)).format != "PNG":
        raise InvalidDrawing("Drawings are stored as PNG: send a PNG image.")
    return model_input


def add_drawing(
    data: bytes,
    label,
    *,
    source: str = "canvas",
    writer: str = "",
    prediction: Prediction | None = None,
    contributor=None,
    session_key: str = "",
    client: str = "",
    split: str | None = None,
    status: str | None = None,
    model_input: np.ndarray | None = None,
    strokes: list[np.ndarray] | None = None,
) -> tuple[Drawing, bool]:
    """Store a drawing, or return the existing one with the same content.

    Returns ``(drawing, created)``. Raises :class:`InvalidDrawing`,
    ``PreprocessingError`` (bad image) or :class:`StorageUnavailable`.
    ``model_input``: the caller's own preprocessing of ``data``, if it made one.
    ``strokes``: the pen as drawn (``canvas.parse_strokes``' output), stored in the
    same row, so drawing and strokes arrive together or not at all. A drawing
    already stored without strokes gains them. ``client``: who sent it
    (``digits_site.clients.client_key``), for ``collector.abuse``.
    """
    label = validate_label(label)
    if split is not None and split not in splits.SPLITS:
        raise InvalidDrawing(f"Unknown split {split!r}.")
    if status is not None and status not in Drawing.Status.values:
        raise InvalidDrawing(f"Unknown status {status!r}.")
    model_input = validate_png(data, model_input)
    sha = hashlib.sha256(data).hexdigest()
    stored_strokes = canvas.strokes_as_json(strokes) if strokes else None
    existing = Drawing.objects.filter(sha256=sha).first()
    if existing is not None:
        if stored_strokes and not existing.strokes:
            Drawing.objects.filter(pk=existing.pk, strokes__isnull=True).update(
                strokes=stored_strokes
            )
            existing.refresh_from_db(fields=["strokes"])
        return existing, False
    if status is None:
        status = Drawing.Status.APPROVED if settings.DIGITS_AUTO_APPROVE else Drawing.Status.PENDING

    drawing = Drawing(
        sha256=sha,
        label=label,
        source=source,
        writer=writer,
        contributor=contributor if getattr(contributor, "is_authenticated", False) else None,
        session_key=session_key or "",
        client=client,
        fingerprint=abuse.fingerprint(model_input),
        status=status,
        approved_at=timezone.now() if status == Drawing.Status.APPROVED else None,
        strokes=stored_strokes,
    )
    if prediction is not None:
        drawing.predicted_label = prediction.digit
        drawing.predicted_confidence = prediction.confidence
        drawing.model_version_id = prediction.model_version_id
    # An earlier attempt that died before its row may have left the file. It is
    # reused only if its content is what its name (the hash) says; anything else
    # (a truncated write from before writes were atomic, a damaged disk) is replaced.
    name = drawing_path(drawing, "")
    wrote_file = False
    try:
        try:
            with transaction.atomic():
                drawing.split = SplitCounter.objects.claim(label, sha, forced=split)
                if not stored_intact(name, sha):
                    if default_storage.exists(name):
                        default_storage.delete(name)  # damaged: its name is this content's
                    name = default_storage.save(name, ContentFile(data))
                    wrote_file = True
                drawing.image.name = name
                drawing.save()
        except BaseException:
            if wrote_file:  # no row will point at it
                _delete_quietly(name)
            raise
    except IntegrityError:
        # A concurrent request stored the same drawing first.
        winner = Drawing.objects.filter(sha256=sha).first()
        if winner is None:
            raise
        return winner, False
    except OSError as exc:
        logger.exception("Could not store drawing %s", sha)
        raise StorageUnavailable("The drawing could not be saved right now; try again.") from exc
    return drawing, True


def relabel_own(drawing: Drawing, label: int, client: str, source: str) -> bool:
    """A contributor may change the label of their own correction until staff review
    it ("Wrong? It's a …" pressed again: the later press is what they meant). Anyone
    else's drawing, a reviewed one, or a plain contribution sent again keeps its
    label. True when it changed."""
    if source != "correction" or drawing.source != "correction":
        return False
    if not client or drawing.client != client or drawing.label == label:
        return False
    with transaction.atomic():
        locked = Drawing.objects.select_for_update().get(pk=drawing.pk)
        if locked.status != Drawing.Status.PENDING:
            return False
        changed = locked.relabel(label)
    drawing.refresh_from_db(fields=["label"])
    return changed


def read_model_input(drawing: Drawing, skipped: list | None = None) -> np.ndarray | None:
    """A stored drawing's model input, or None (noted in ``skipped`` as ``[id, why]``)
    when its file is missing, is not what its hash says, or does not decode: one
    damaged file must not abort a run or a scoring pass over thousands
    (``check_storage`` lists them)."""
    try:
        return preprocessing.to_model_input(read_image(drawing))
    except (OSError, InvalidDrawing, preprocessing.PreprocessingError) as exc:
        _skip(drawing, exc, skipped)
        return None


def read_image(drawing: Drawing) -> bytes:
    """A stored drawing's PNG, checked against its hash: raises ``OSError`` for a
    missing file and :class:`InvalidDrawing` for a damaged one. Training, scoring
    and exports all read drawings here."""
    with default_storage.open(drawing.image.name, "rb") as handle:
        data = handle.read()
    if hashlib.sha256(data).hexdigest() != drawing.sha256:
        raise InvalidDrawing("its file does not match its hash (damaged)")
    return data


def readable_images(
    drawings: Iterable[Drawing], skipped: list | None = None
) -> Iterator[tuple[Drawing, bytes]]:
    """Each drawing with its checked PNG; unreadable ones are left out and noted in
    ``skipped`` as ``[id, why]`` (``check_storage`` lists them)."""
    for drawing in drawings:
        try:
            yield drawing, read_image(drawing)
        except (OSError, InvalidDrawing) as exc:
            _skip(drawing, exc, skipped)


def _skip(drawing: Drawing, exc: Exception, skipped: list | None) -> None:
    logger.warning("Skipping drawing %s: %s", drawing.pk, exc)
    if skipped is not None:
        skipped.append([drawing.pk, str(exc) or type(exc).__name__])


def stored_intact(name: str, sha256: str) -> bool:
    """Whether storage holds ``name`` with exactly the content whose hash is ``sha256``."""
    try:
        with default_storage.open(name, "rb") as handle:
            return hashlib.file_digest(handle, "sha256").hexdigest() == sha256
    except (FileNotFoundError, ValueError):
        return False


def _delete_quietly(name: str) -> None:
    try:
        default_storage.delete(name)
    except OSError:
        logger.exception("Could not remove %s after a failed insert", name)


def delete_drawing_file(drawing: Drawing) -> None:
    """After a drawing's row is gone (and committed), remove its file and un-count it."""
    name = drawing.image.name
    label, split = drawing.label, drawing.split

    def cleanup() -> None:
        if name and not Drawing.objects.filter(image=name).exists():
            _delete_quietly(name)
        with transaction.atomic():
            SplitCounter.objects.release(label, split)

    transaction.on_commit(cleanup)


IMPORTED_SOURCE_PREFIX = "import:"  # collector.imports' sources; the rest came from people here


def stats() -> dict:
    """Counts for the dataset page and ``/api/dataset/stats/`` (every stored drawing)."""

    def grouped(field: str, keys) -> dict:
        counts = dict(Drawing.objects.values_list(field).annotate(n=Count("id")).order_by())
        return {str(key): counts.get(key, 0) for key in keys} | {
            str(k): v for k, v in counts.items() if k not in keys
        }

    by_label_split = {str(label): {split: 0 for split in splits.SPLITS} for label in range(10)}
    for label, split, n in (
        Drawing.objects.values_list("label", "split").annotate(n=Count("id")).order_by()
    ):
        by_label_split[str(label)][split] = n
    imported = Drawing.objects.filter(source__startswith=IMPORTED_SOURCE_PREFIX).count()
    total = Drawing.objects.count()
    return {
        "total": total,
        "contributed": total - imported,
        "imported": imported,
        "by_label": grouped("label", range(10)),
        "by_split": grouped("split", list(splits.SPLITS)),
        "by_status": grouped("status", list(Drawing.Status.values)),
        "by_source": dict(
            Drawing.objects.values_list("source").annotate(n=Count("id")).order_by("source")
        ),
        "by_label_split": by_label_split,
    }


def digits_most_needed() -> list[int]:
    """Digits ordered by how few usable (not rejected) drawings they have."""
    counts = dict(
        Drawing.objects.exclude(status=Drawing.Status.REJECTED)
        .values_list("label")
        .annotate(n=Count("id"))
        .order_by()
    )
    return sorted(range(10), key=lambda digit: (counts.get(digit, 0), digit))
