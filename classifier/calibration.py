"""Confidence people can read: temperature scaling and the "not sure" threshold.

Label smoothing trains a model to say about 90 % even when it is certain, and
a misread can say the same: the number means little. Temperature scaling
(Guo et al., "On Calibration of Modern Neural Networks", 2017) fixes the
scale with one number fitted on validation data: probabilities become
``softmax(log p / T)``. It never changes which digit wins, so accuracy and the
gate are untouched. The fitted temperature and threshold are stored with each
model version (its ``metrics["calibration"]``) and applied by the predictor.

NumPy only: the web process, training and the benchmarks share it.
"""

from __future__ import annotations

import numpy as np

ECE_BINS = 15
# The "not sure" threshold is the confidence under which at most this share of
# the validation set's *correct* answers fall: clear drawings stay "sure".
SURE_MISS_RATE = 0.02
THRESHOLD_RANGE = (0.5, 0.97)
TEMPERATURE_RANGE = (0.2, 5.0)


def apply_temperature(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """``softmax(log p / T)`` row by row (T < 1 sharpens, T > 1 softens)."""
    if temperature == 1.0:
        return np.asarray(probabilities, dtype=np.float32)
    p = np.asarray(probabilities, dtype=np.float64)
    with np.errstate(divide="ignore"):
        logits = np.log(p) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    scaled = np.exp(logits)
    return (scaled / scaled.sum(axis=1, keepdims=True)).astype(np.float32)


def negative_log_likelihood(probabilities: np.ndarray, labels: np.ndarray) -> float:
    picked = np.asarray(probabilities)[np.arange(len(labels)), np.asarray(labels, int)]
    return float(-np.log(np.clip(picked, 1e-12, 1.0)).mean())


def fit_temperature(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """The temperature that minimises the validation set's negative log-likelihood
    (a fine grid: one parameter, no optimiser to go wrong). Bounded by
    ``TEMPERATURE_RANGE``: a validation set with no mistakes would otherwise drive
    it towards zero, claiming certainty no data supports."""
    if not len(labels):
        return 1.0
    low, high = TEMPERATURE_RANGE
    grid = np.exp(np.linspace(np.log(low), np.log(high), 241))
    losses = [negative_log_likelihood(apply_temperature(probabilities, t), labels) for t in grid]
    return round(float(grid[int(np.argmin(losses))]), 4)


def expected_calibration_error(
    probabilities: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS
) -> float:
    """|accuracy − confidence| averaged over equal-width confidence bins, weighted by
    how many answers fall in each (Naeini et al., 2015)."""
    p = np.asarray(probabilities)
    if not len(p):
        return 0.0
    confidence = p.max(axis=1)
    correct = p.argmax(axis=1) == np.asarray(labels)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    error = 0.0
    for b in range(bins):
        mask = which == b
        if mask.any():
            error += mask.mean() * abs(correct[mask].mean() - confidence[mask].mean())
    return float(error)


def choose_threshold(probabilities: np.ndarray, labels: np.ndarray) -> dict:
    """The "not sure" threshold, from data: the confidence under which only
    ``SURE_MISS_RATE`` of correct answers fall, and what share of misreads it catches."""
    p = np.asarray(probabilities)
    confidence = p.max(axis=1)
    correct = p.argmax(axis=1) == np.asarray(labels)
    low, high = THRESHOLD_RANGE
    threshold = float(np.quantile(confidence[correct], SURE_MISS_RATE)) if correct.any() else low
    threshold = round(min(high, max(low, threshold)), 4)
    misreads = confidence[~correct]
    return {
        "threshold": threshold,
        "misreads_flagged": float((misreads < threshold).mean()) if len(misreads) else None,
        "correct_flagged": float((confidence[correct] < threshold).mean())
        if correct.any()
        else None,
        "misreads": len(misreads),
        "n": len(p),
    }
