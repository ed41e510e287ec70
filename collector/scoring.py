"""The active model's guess for every stored drawing: what the admin's "model
disagrees with the label" filter sorts by, the curator's best tool for finding
mislabels.

Contributions get a guess when they arrive; imports arrive without one, and a
promotion makes every older guess stale. :func:`score` fills in both, in
batches, from the inputs kept beside the stored pictures
(``collector.tasks.score_drawings`` runs it in the background after an import
and after each promotion).
"""

from __future__ import annotations

import numpy as np
from django.db import connection
from django.db.models import QuerySet

from classifier import runtime, serving
from collector import dataset
from collector.models import Drawing

BATCH = 512
# What scoring reads of a drawing (not its strokes: kilobytes a row, unused here).
FIELDS = ("pk", "image", "sha256")


def needing_scores(version_id: int) -> QuerySet[Drawing]:
    """Drawings without a guess, or with another version's."""
    return Drawing.objects.exclude(model_version_id=version_id)


def score(queryset: QuerySet[Drawing] | None = None) -> int:
    """Give drawings (by default: all that need it) the active model's guess; how
    many were scored. Raises ``runtime.NoActiveModel`` without a model.

    BATCH drawings at a time, in the order of their ids (each batch the next ids
    past the last one: an index range, whatever the table's size), read from the
    inputs kept beside them (``dataset.model_inputs_of``: a picture is decoded and
    preprocessed only the first time), and their guesses written in one statement."""
    loaded = runtime.active_model()
    rows = queryset if queryset is not None else needing_scores(loaded.version_id)
    rows = rows.only(*FIELDS).order_by("pk")
    scored, last = 0, None
    while True:
        drawings = list((rows if last is None else rows.filter(pk__gt=last))[:BATCH])
        if not drawings:
            return scored
        last = drawings[-1].pk
        found = dataset.model_inputs_of(drawings)
        readable = [(d, x) for d, x in zip(drawings, found, strict=True) if x is not None]
        if not readable:
            continue
        inputs = np.stack([x for _, x in readable]).astype(np.float32) / 255.0
        verdicts = serving.classify(inputs, loaded.predictor)
        digits = verdicts.digits
        confidences = verdicts.probabilities[np.arange(len(digits)), digits]
        _record_guesses(
            loaded.version_id, [d.pk for d, _ in readable], digits.tolist(), confidences.tolist()
        )
        scored += len(readable)


def _record_guesses(
    version_id: int, ids: list[int], digits: list[int], confidences: list[float]
) -> None:
    """One UPDATE for a batch's guesses (PostgreSQL: from arrays; elsewhere one
    prepared statement run per row), not Django's ``bulk_update``, whose CASE
    expressions cost more to build than the model took to answer."""
    meta = Drawing._meta
    table = connection.ops.quote_name(meta.db_table)
    label, confidence, version = (
        connection.ops.quote_name(meta.get_field(name).column)
        for name in ("predicted_label", "predicted_confidence", "model_version")
    )
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                f"UPDATE {table} AS d SET {label} = v.label, {confidence} = v.confidence, "
                f"{version} = %s FROM unnest(%s::bigint[], %s::int[], %s::float8[]) "
                "AS v(id, label, confidence) WHERE d.id = v.id",
                [version_id, ids, digits, confidences],
            )
        else:
            cursor.executemany(
                f"UPDATE {table} SET {label} = %s, {confidence} = %s, {version} = %s WHERE id = %s",
                [(d, c, version_id, pk) for pk, d, c in zip(ids, digits, confidences, strict=True)],
            )
