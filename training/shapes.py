"""Drawing primitives for synthesised handwriting (``training.allographs``):
lines, arcs and paths in canvas pixels (y down), a form placed in a writer's
own box, and :class:`Span`, the range of a style family's parameter with the
band held out for the disjoint style test."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

Strokes = list[np.ndarray]


@dataclass(frozen=True)
class Span:
    """A family's parameter: training draws from ``[low, high]`` outside the band
    ``[held_low, held_high]``, the disjoint style test only from inside it."""

    low: float
    high: float
    held_low: float
    held_high: float

    def draw(self, rng: np.random.Generator, held_out: bool) -> float:
        if held_out:
            return float(rng.uniform(self.held_low, self.held_high))
        below, above = self.held_low - self.low, self.high - self.held_high
        u = float(rng.uniform(0.0, below + above))
        return self.low + u if u < below else self.held_high + (u - below)


def box(strokes: Sequence[np.ndarray]) -> tuple[float, float, float, float]:
    points = np.concatenate(strokes)
    (x0, y0), (x1, y1) = points.min(axis=0), points.max(axis=0)
    return float(x0), float(y0), float(x1 - x0) or 1.0, float(y1 - y0) or 1.0


def line(start, end, n: int = 12) -> np.ndarray:
    t = np.linspace(0.0, 1.0, n)[:, None]
    return (1 - t) * np.asarray(start, float) + t * np.asarray(end, float)


def path(*points, n: int = 10) -> np.ndarray:
    """A polyline through ``points`` with ``n`` points per segment."""
    parts = [line(a, b, n)[:-1] for a, b in itertools.pairwise(points)]
    return np.concatenate([*parts, np.asarray(points[-1], float)[None]])


def arc(centre, radii, start_deg: float, end_deg: float, n: int = 24) -> np.ndarray:
    angles = np.radians(np.linspace(start_deg, end_deg, n))
    return np.column_stack(
        [centre[0] + radii[0] * np.cos(angles), centre[1] + radii[1] * np.sin(angles)]
    )


def in_box(template: Strokes, strokes: Strokes, rng: np.random.Generator) -> Strokes:
    """A form drawn in unit coordinates, placed in the writer's own box with their
    height and a width near their proportions, and a little hand wobble."""
    x0, y0, w, h = box(strokes)
    width = max(w, 0.45 * h) * rng.uniform(0.85, 1.1)
    slant = rng.uniform(-0.15, 0.15)
    out = []
    for stroke in template:
        xy = stroke.copy()
        xy[:, 0] = x0 + (xy[:, 0] + slant * (1 - xy[:, 1])) * width
        xy[:, 1] = y0 + xy[:, 1] * h
        out.append(xy + rng.normal(0.0, 0.006 * h, xy.shape))
    return out


def u(rng: np.random.Generator, low: float, high: float) -> float:
    return float(rng.uniform(low, high))
