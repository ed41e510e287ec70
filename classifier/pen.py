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


def features(strokes: Sequence[np.ndarray], points: int = POINTS) -> np.ndarray:
    """``(points, FEATURES)`` float32 for one drawing's strokes (each an ``(n, 2+)``
    array of canvas x, y and, ignored here, t).

    Every stroke is resampled in one pass over all of them (no NumPy call per
    stroke: a live prediction pays this on every request)."""
    paths = [np.asarray(s, dtype=np.float64)[:, :2] for s in strokes if len(s)]
    if not paths:
        return np.zeros((points, FEATURES), np.float32)
    sizes = np.array([len(p) for p in paths])
    xy_in = np.concatenate(paths) if len(paths) > 1 else paths[0]
    first = np.concatenate([[0], np.cumsum(sizes)[:-1]])  # each stroke's first point
    steps = np.hypot(*np.diff(xy_in, axis=0).T)
    steps[first[1:] - 1] = 0.0  # no step from one stroke's end to the next's start
    along = np.concatenate([[0.0], np.cumsum(steps)])  # path drawn before each point
    lengths = along[first + sizes - 1] - along[first]
    counts = _allocate(lengths, points)
    used = counts > 0
    # Each output point: its stroke, and where along that stroke (0 … 1) it lies.
    stroke = np.repeat(np.arange(len(paths)), counts)
    at = np.arange(points) - np.repeat(np.cumsum(counts) - counts, counts)
    span = np.maximum(counts - 1, 1)[stroke]
    share = np.where(counts[stroke] > 1, at / span, 0.5)  # one point: the stroke's middle
    target = along[first][stroke] + share * lengths[stroke]
    # Interpolate within each stroke: strokes are laid end to end along one axis
    # with a gap, so no point is ever drawn between two of them.
    gap = 1.0 + float(lengths.sum())
    offset = np.repeat(np.arange(len(paths)) * gap, sizes)
    key = along + offset
    target_key = target + stroke * gap
    xy = np.column_stack([np.interp(target_key, key, xy_in[:, i]) for i in (0, 1)])
    # A stroke of one point (a dot) is that point; a stroke given one point of
    # several, its middle point as drawn.
    single = counts[stroke] == 1
    if single.any():
        middle = first + sizes // 2
        xy[single] = xy_in[middle[stroke[single]]]
    still = (lengths <= 0)[stroke] & ~single
    if still.any():  # a stroke that never moves: its first point, repeated
        xy[still] = xy_in[first[stroke[still]]]
    direction = np.zeros((points, 2))
    delta = np.diff(xy, axis=0)
    within = stroke[1:] == stroke[:-1]
    norms = np.hypot(delta[:, 0], delta[:, 1])[:, None]
    ok = within[:, None] & (norms > 1e-9)
    np.divide(delta, norms, out=direction[:-1], where=ok)
    start = np.zeros(points)
    start[np.cumsum(counts[used]) - counts[used]] = 1.0
    before = np.concatenate([[0.0], np.cumsum(lengths)[:-1]])
    total = float(lengths.sum()) or 1.0
    drawn = (before[stroke] + share * lengths[stroke]) / total
    drawn[single] = before[stroke[single]] / total
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
