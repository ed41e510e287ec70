"""What the model says about drawings: the one path from model inputs to an answer,
used by the predict and contribute APIs, the training gate and ``evaluate``.

Inference only: requests are read by the web plumbing (``digits_site.bodies``)
and preprocessed once per image (``classifier.preprocessing``) before they
reach :func:`classify`. The model is the process' active one
(``classifier.runtime``) unless a caller passes its own predictor (a
candidate's artifact, a file to evaluate).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from django.conf import settings

from classifier import combination, pen, runtime
from classifier.predictor import Predictor

# Larger inputs go through the interpreter in chunks of this many images.
CHUNK = 1000


@dataclass(frozen=True)
class Verdicts:
    """The model's probabilities for a batch of images, and which version said so
    (``None`` for a predictor that is not a registered version)."""

    probabilities: np.ndarray  # (n, 10) float32, calibrated
    model_version: int | None
    model_version_id: int | None = None  # the ModelVersion row's id
    threshold: float | None = None  # the version's "not sure" threshold
    # Per image: whether the answer is "sure", where both views decided it (the
    # combination's own threshold, and never when the views disagree strongly).
    sure: np.ndarray | None = None
    read_pen: np.ndarray | None = None  # per image: the pen view took part

    @property
    def digits(self) -> np.ndarray:
        return self.probabilities.argmax(axis=1)

    def answer(self, index: int = 0) -> dict:
        """One image's answer, as the API sends it."""
        probabilities = self.probabilities[index]
        digit = int(np.argmax(probabilities))
        confidence = float(probabilities[digit])
        threshold = (
            settings.DIGITS_CONFIDENCE_THRESHOLD if self.threshold is None else self.threshold
        )
        sure = confidence >= threshold if self.sure is None else bool(self.sure[index])
        both = self.read_pen is not None and bool(self.read_pen[index])
        return {
            "digit": digit,
            "probabilities": [round(float(p), 6) for p in probabilities],
            "confidence": round(confidence, 6),
            "sure": sure,
            "views": ["image", "pen"] if both else ["image"],
            "model_version": self.model_version,
        }


def classify(
    images: np.ndarray,
    predictor: Predictor | None = None,
    progress: Callable[[int], None] | None = None,
    strokes: Sequence[Sequence[np.ndarray] | None] | None = None,
) -> Verdicts:
    """Probabilities for ``images`` ((n, 28, 28) floats in [0, 1], model inputs) from
    ``predictor``, or from the active model when none is given; ``progress`` hears
    how many images each chunk answered. ``strokes``: per image, its strokes (the
    page's, checked to draw that picture) or None; where the active version has a
    pen view, images with strokes are answered by both views combined.

    Raises :class:`runtime.NoActiveModel` when there is no model to ask.
    """
    images = np.asarray(images, dtype=np.float32)
    version = version_id = threshold = None
    loaded = None
    if predictor is None:
        loaded = runtime.active_model()
        predictor, version, version_id = loaded.predictor, loaded.version, loaded.version_id
        threshold = loaded.threshold
    if len(images) <= CHUNK:  # every request: one call, no copies
        probabilities = predictor.predict(images) if len(images) else np.zeros((0, 10), np.float32)
        if progress is not None:
            progress(len(images))
    else:
        chunks = []
        for start in range(0, len(images), CHUNK):
            chunks.append(predictor.predict(images[start : start + CHUNK]))
            if progress is not None:  # as each chunk is answered, not at the end
                progress(len(chunks[-1]))
        probabilities = np.concatenate(chunks)
    if loaded is None or loaded.pen is None or not strokes or not any(s for s in strokes):
        return Verdicts(probabilities, version, version_id, threshold)
    return _with_pen(Verdicts(probabilities, version, version_id, threshold), loaded, strokes)


def _with_pen(image_only: Verdicts, loaded: runtime.LoadedModel, strokes: Sequence) -> Verdicts:
    """The images that came with strokes, answered by both views combined."""
    rows = [i for i, s in enumerate(strokes) if s]
    p_image = image_only.probabilities[rows]
    p_pen = loaded.pen.predict(pen.batch([strokes[i] for i in rows]))
    fitted = loaded.combination
    combined = combination.combine(p_image, p_pen, fitted)
    probabilities = image_only.probabilities.copy()
    probabilities[rows] = combined
    threshold = (
        settings.DIGITS_CONFIDENCE_THRESHOLD if loaded.threshold is None else loaded.threshold
    )
    sure = probabilities.max(axis=1) >= threshold
    sure[rows] = combination.sure(p_image, p_pen, combined, fitted)
    read_pen = np.zeros(len(probabilities), bool)
    read_pen[rows] = True
    return Verdicts(
        probabilities,
        image_only.model_version,
        image_only.model_version_id,
        image_only.threshold,
        sure,
        read_pen,
    )
