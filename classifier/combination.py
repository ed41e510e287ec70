"""One answer from two views: the picture and the pen.

Each view's model gives calibrated probabilities; the answer is
``softmax(a · log p_image + b · log p_pen)``, with ``a`` and ``b`` fitted on
validation drawings that have both (the negative log-likelihood, over a fine
grid: two numbers, no optimiser to go wrong), stored with the version. A view
that knows more gets more weight, and ``a + b`` sets how sharp the answer is.

An answer is "sure" when its confidence reaches the combination's own threshold
(fitted like the image model's, ``classifier.calibration``) **and** the views do
not disagree strongly: when each view is more sure than not of a different
digit, one of them is wrong and nobody can say which, so the answer is "not
sure" whatever the numbers.

NumPy only: the web process and training share it.
"""

from __future__ import annotations

import numpy as np

from classifier import calibration

WEIGHTS = np.round(np.arange(0.0, 2.0001, 0.05), 2)
# The label of ink that is no digit in :func:`fit` (its target: every digit equally).
NO_DIGIT = -1
# Each view more sure than not of a different digit: a strong disagreement.
DISAGREE = 0.5


def combine(p_image: np.ndarray, p_pen: np.ndarray, combination: dict) -> np.ndarray:
    """The combined probabilities, row by row."""
    return _combine(p_image, p_pen, combination["image_weight"], combination["pen_weight"])


def _combine(p_image: np.ndarray, p_pen: np.ndarray, a: float, b: float) -> np.ndarray:
    logits = a * np.log(np.clip(np.asarray(p_image, np.float64), 1e-12, 1.0)) + b * np.log(
        np.clip(np.asarray(p_pen, np.float64), 1e-12, 1.0)
    )
    logits -= logits.max(axis=1, keepdims=True)
    scaled = np.exp(logits)
    return (scaled / scaled.sum(axis=1, keepdims=True)).astype(np.float32)


def disagree(p_image: np.ndarray, p_pen: np.ndarray) -> np.ndarray:
    """Rows where each view is more sure than not of a different digit."""
    return (
        (p_image.argmax(1) != p_pen.argmax(1))
        & (p_image.max(1) > DISAGREE)
        & (p_pen.max(1) > DISAGREE)
    )


def sure(
    p_image: np.ndarray, p_pen: np.ndarray, combined: np.ndarray, combination: dict
) -> np.ndarray:
    """Which combined answers are "sure"."""
    return (combined.max(1) >= combination["threshold"]) & ~disagree(p_image, p_pen)


def fit(
    p_image: np.ndarray, p_pen: np.ndarray, labels: np.ndarray, weights: np.ndarray | None = None
) -> dict:
    """The weights that minimise the validation drawings' negative log-likelihood
    (each drawing counting ``weights``, 1 by default), the "not sure" threshold for
    the combined answer, and how the weights did. A label of ``NO_DIGIT`` marks ink
    that is no digit: its target is every digit equally, so weights that would make
    both views' doubts add up to certainty cost what they should."""
    labels = np.asarray(labels, np.int64)
    weights = np.ones(len(labels)) if weights is None else np.asarray(weights, np.float64)
    weights = weights / weights.sum() if len(labels) else weights
    digits = labels >= 0
    if not digits.any():
        return {"image_weight": 1.0, "pen_weight": 0.0, "threshold": 0.5, "n": 0}
    log_image = np.log(np.clip(np.asarray(p_image, np.float64), 1e-12, 1.0))
    log_pen = np.log(np.clip(np.asarray(p_pen, np.float64), 1e-12, 1.0))
    rows = np.arange(len(labels))
    best = (np.inf, 1.0, 0.0)
    for a in WEIGHTS:
        for b in WEIGHTS:
            if a == 0 and b == 0:
                continue
            logits = a * log_image + b * log_pen
            top = logits.max(axis=1)
            normaliser = np.log(np.exp(logits - top[:, None]).sum(axis=1)) + top
            target = np.where(digits, logits[rows, np.maximum(labels, 0)], logits.mean(axis=1))
            nll = float(((normaliser - target) * weights).sum())
            if nll < best[0] - 1e-9:
                best = (nll, float(a), float(b))
    nll, a, b = best
    combined = _combine(p_image[digits], p_pen[digits], a, b)
    chosen = calibration.choose_threshold(combined, labels[digits])
    return {
        "image_weight": a,
        "pen_weight": b,
        "threshold": chosen["threshold"],
        "nll": round(nll, 5),
        "accuracy": round(float((combined.argmax(1) == labels[digits]).mean()), 5),
        "n": int(digits.sum()),
        "n_no_digit": int((~digits).sum()),
    }
