"""The pen view's input: a drawing's strokes as a fixed-length trajectory.

The picture cannot always tell a continental 1 (an up-stroke, then a long
down-stroke) from a 7 (a bar drawn left to right, then a down-stroke); the pen
can. This turns strokes into what the pen model reads, for serving and for
training alike (one home):

- **geometry and order only**: points are resampled evenly along the pen's path
  (arc length), so a tablet's ten points a second and a mouse's hundred give the
  same input, and timestamps are never read;
- **position**: centred on the drawing's box and scaled by its longer side (the
  aspect kept), so size and place on the pad do not matter;
- **direction**: the unit vector to the next point of the same stroke (which way
  the pen went), and **where strokes start**, so two strokes are not one.

No Django and no TensorFlow: the web process, training's worker processes and
the benchmarks all call it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# Points along the whole drawing, and what each point carries:
# x, y (centred, longer side 2), dx, dy (unit direction along its stroke; 0 at a
# stroke's end and for a dot), stroke start (1 at a stroke's first point), and the
# share of the drawing's path drawn so far (where in the writing this point is).
POINTS = 64
FEATURES = 6
# Bump when what ``features`` makes changes: pen models are trained for one version.
PEN_FEATURES_VERSION = 1


def _allocate(lengths: np.ndarray, points: int) -> np.ndarray:
    """Points per stroke: at least one each, the rest by the strokes' lengths
    (largest remainders), so long strokes are sampled as densely as short ones."""
    n = len(lengths)
    if n >= points:
        counts = np.zeros(n, np.int64)
        counts[:points] = 1  # more strokes than points: the first ones (never at 64)
        return counts
    spare = points - n
    total = float(lengths.sum())
    share = lengths / total * spare if total > 0 else np.full(n, spare / n)
    counts = np.floor(share).astype(np.int64)
    left = spare - int(counts.sum())
    if left:
        order = np.argsort(-(share - counts), kind="stable")
        counts[order[:left]] += 1
    return counts + 1


def _along(points: np.ndarray, count: int) -> np.ndarray:
    """``count`` points evenly spaced along a polyline (both ends kept when count ≥ 2)."""
    if count == 1:
        return points[len(points) // 2][None]  # a stroke given one point: its middle one
    if len(points) == 1:
        return np.repeat(points, count, axis=0)  # a dot
    steps = np.linalg.norm(np.diff(points, axis=0), axis=1)
    along = np.concatenate([[0.0], np.cumsum(steps)])
    if along[-1] <= 0:
        return np.repeat(points[:1], count, axis=0)
    targets = np.linspace(0.0, along[-1], count)
    return np.column_stack([np.interp(targets, along, points[:, i]) for i in (0, 1)])


def features(strokes: Sequence[np.ndarray], points: int = POINTS) -> np.ndarray:
    """``(points, FEATURES)`` float32 for one drawing's strokes (each an ``(n, 2+)``
    array of canvas x, y and, ignored here, t)."""
    paths = [np.asarray(s, dtype=np.float64)[:, :2] for s in strokes if len(s)]
    if not paths:
        return np.zeros((points, FEATURES), np.float32)
    lengths = np.array([np.linalg.norm(np.diff(p, axis=0), axis=1).sum() for p in paths])
    counts = _allocate(lengths, points)
    xy = np.empty((points, 2))
    direction = np.zeros((points, 2))
    start = np.zeros(points)
    drawn = np.zeros(points)
    at, before, total = 0, 0.0, float(lengths.sum()) or 1.0
    for path, count, length in zip(paths, counts, lengths, strict=True):
        if count == 0:
            continue
        sampled = _along(path, int(count))
        xy[at : at + count] = sampled
        steps = np.diff(sampled, axis=0)
        norms = np.linalg.norm(steps, axis=1, keepdims=True)
        direction[at : at + count - 1] = np.divide(
            steps, norms, out=np.zeros_like(steps), where=norms > 1e-9
        )
        start[at] = 1.0
        drawn[at : at + count] = (before + np.linspace(0.0, length, int(count))) / total
        before += length
        at += int(count)
    low, high = xy.min(axis=0), xy.max(axis=0)
    half = float(max(high - low)) / 2.0 or 1.0
    xy = (xy - (low + high) / 2.0) / half
    return np.column_stack([xy, direction, start, drawn]).astype(np.float32)


def batch(drawings: Sequence[Sequence[np.ndarray]], points: int = POINTS) -> np.ndarray:
    """``(n, points, FEATURES)`` for several drawings' strokes."""
    out = np.empty((len(drawings), points, FEATURES), np.float32)
    for i, strokes in enumerate(drawings):
        out[i] = features(strokes, points)
    return out
