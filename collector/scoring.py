"""The active model's guess for every stored drawing: what the admin's "model
disagrees with the label" filter sorts by, the curator's best tool for finding
mislabels.

Contributions get a guess when they arrive; imports arrive without one, and a
promotion makes every older guess stale. :func:`score` fills in both, in
batches, from the stored pictures (``collector.tasks.score_drawings`` runs it
in the background after an import and after each promotion).
"""

from __future__ import annotations

import numpy as np
from django.db.models import QuerySet

from classifier import runtime, serving
from collector import dataset
from collector.models import Drawing

BATCH = 512


def needing_scores(version_id: int) -> QuerySet[Drawing]:
    """Drawings without a guess, or with another version's."""
    return Drawing.objects.exclude(model_version_id=version_id)


def score(queryset: QuerySet[Drawing] | None = None) -> int:
    """Give drawings (by default: all that need it) the active model's guess; how
    many were scored. Raises ``runtime.NoActiveModel`` without a model."""
    loaded = runtime.active_model()
    ids = list((queryset if queryset is not None else needing_scores(loaded.version_id))
               .order_by("pk").values_list("pk", flat=True))  # fmt: skip
    scored = 0
    for start in range(0, len(ids), BATCH):
        drawings, inputs = [], []
        for drawing in Drawing.objects.filter(pk__in=ids[start : start + BATCH]):
            model_input = dataset.read_model_input(drawing)
            if model_input is not None:
                drawings.append(drawing)
                inputs.append(model_input)
        if not drawings:
            continue
        verdicts = serving.classify(np.stack(inputs), loaded.predictor)
        for drawing, row, digit in zip(
            drawings, verdicts.probabilities, verdicts.digits, strict=True
        ):
            drawing.predicted_label = int(digit)
            drawing.predicted_confidence = float(row[digit])
            drawing.model_version_id = loaded.version_id
        Drawing.objects.bulk_update(
            drawings, ["predicted_label", "predicted_confidence", "model_version"]
        )
        scored += len(drawings)
    return scored
