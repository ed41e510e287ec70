"""What the dataset looks like and how stored drawings are read back: the checked
reader (``read_image``, ``read_model_input``) training, scoring and exports use,
the model's opinion of a contribution, relabelling, stats.

Drawings come in through ``Drawing.objects.add(NewDrawing(…))``
(``collector.models``): it validates, dedupes by content hash, assigns the
split, and writes file and row together or not at all.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Iterator, Sequence

import numpy as np
from django.core.files.storage import default_storage
from django.db import transaction

from classifier import preprocessing, serving
from collector import counts, model_inputs, splits
from collector.models import Drawing, InvalidDrawing, Prediction, SplitCounter, delete_quietly

logger = logging.getLogger(__name__)


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


def model_inputs_of(
    drawings: Sequence[Drawing], skipped: list | None = None
) -> list[np.ndarray | None]:
    """Each drawing's model input, 28×28 uint8, in order: the one kept beside it
    (``collector.model_inputs``), or made now from its picture and kept; None for
    a drawing whose file is unreadable (noted in ``skipped`` as ``[id, why]``, as
    :func:`read_model_input` does)."""
    version, side = preprocessing.PREPROCESSING_VERSION, model_inputs.SIDE
    rows = model_inputs.ModelInput.objects.filter(
        drawing_id__in=[d.pk for d in drawings], version=version
    )
    kept = dict(rows.values_list("drawing_id", "pixels"))
    found: list[np.ndarray | None] = []
    made = []
    for drawing in drawings:
        pixels = kept.get(drawing.pk)
        if pixels is not None and len(pixels) == side * side:
            found.append(np.frombuffer(bytes(pixels), np.uint8).reshape(side, side))
            continue
        model_input = read_model_input(drawing, skipped)
        x = None if model_input is None else preprocessing.as_bytes(model_input)
        found.append(x)
        if x is not None:
            made.append(
                model_inputs.ModelInput(drawing_id=drawing.pk, version=version, pixels=x.tobytes())
            )
    if made:
        model_inputs.ModelInput.objects.bulk_create(
            made, update_conflicts=True, unique_fields=["drawing"],
            update_fields=["version", "pixels"],
        )  # fmt: skip
    return found


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


def delete_drawing_file(drawing: Drawing) -> None:
    """After a drawing's row is gone (and committed), remove its file and un-count it."""
    name = drawing.image.name
    label, split = drawing.label, drawing.split

    def cleanup() -> None:
        if name and not Drawing.objects.filter(image=name).exists():
            delete_quietly(name)
        with transaction.atomic():
            SplitCounter.objects.release(label, split)

    transaction.on_commit(cleanup)


IMPORTED_SOURCE_PREFIX = "import:"  # collector.imports' sources; the rest came from people here


def stats() -> dict:
    """Counts for the dataset page and ``/api/dataset/stats/`` (every stored drawing),
    from the counts the database keeps (``collector.counts``): a few hundred rows
    whatever the size of the dataset, never a scan of the drawings."""
    by_label = {str(label): 0 for label in range(10)}
    by_split = {split: 0 for split in splits.SPLITS}
    by_status = {status: 0 for status in Drawing.Status.values}
    by_source: dict[str, int] = {}
    by_label_split = {str(label): {split: 0 for split in splits.SPLITS} for label in range(10)}
    total = imported = 0
    for label, split, status, source, _, n in counts.rows():
        total += n
        imported += n if source.startswith(IMPORTED_SOURCE_PREFIX) else 0
        by_label[str(label)] = by_label.get(str(label), 0) + n
        by_split[split] = by_split.get(split, 0) + n
        by_status[status] = by_status.get(status, 0) + n
        by_source[source] = by_source.get(source, 0) + n
        by_label_split.setdefault(str(label), {s: 0 for s in splits.SPLITS})[split] += n
    return {
        "total": total,
        "contributed": total - imported,
        "imported": imported,
        "by_label": by_label,
        "by_split": by_split,
        "by_status": by_status,
        "by_source": dict(sorted(by_source.items())),
        "by_label_split": by_label_split,
    }


def digits_most_needed() -> list[int]:
    """Digits ordered by how few usable (not rejected) drawings they have."""
    usable = dict.fromkeys(range(10), 0)
    for label, _, status, _, _, n in counts.rows():
        if status != Drawing.Status.REJECTED:
            usable[label] = usable.get(label, 0) + n
    return sorted(range(10), key=lambda digit: (usable.get(digit, 0), digit))
