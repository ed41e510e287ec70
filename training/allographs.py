"""Allographs: the other ways the world writes each digit, synthesised on real strokes.

MNIST is American-school handwriting. Elsewhere people slash their zeros
(engineers, programmers, Scandinavia), flag and foot their ones and cross
their sevens (continental Europe), leave fours open, write nines with a
straight stem, loop their twos and write a flat-topped three (Schulz &
Fitzgerald; Srihari et al. on individuality of handwriting; the allograph
inventories of Vuurpijl & Schomaker's UNIPEN work). Each style below turns a
real writer's strokes of that digit into the style, keeping the writer's size,
proportions and stroke quality, or, for forms too different to edit, draws the
form in that writer's box.

``STYLES`` are used in training (a modest share of each digit's strokes) and in
the style test set (held-out writers only). ``PROBES`` are real styles kept
*out* of training on purpose: the flywheel benchmark measures them to show that
contributions teach the model a style it has never seen.

Strokes are in canvas pixels, y down (``classifier.canvas``).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

Strokes = list[np.ndarray]


@dataclass(frozen=True)
class Style:
    name: str
    digit: int
    make: Callable[[Strokes, np.random.Generator], Strokes]
    description: str


def _box(strokes: Sequence[np.ndarray]) -> tuple[float, float, float, float]:
    points = np.concatenate(strokes)
    (x0, y0), (x1, y1) = points.min(axis=0), points.max(axis=0)
    return float(x0), float(y0), float(x1 - x0) or 1.0, float(y1 - y0) or 1.0


def _line(start, end, n: int = 12) -> np.ndarray:
    t = np.linspace(0.0, 1.0, n)[:, None]
    return (1 - t) * np.asarray(start, float) + t * np.asarray(end, float)


def _path(*points, n: int = 10) -> np.ndarray:
    """A polyline through ``points`` with ``n`` points per segment."""
    parts = [_line(a, b, n)[:-1] for a, b in itertools.pairwise(points)]
    return np.concatenate([*parts, np.asarray(points[-1], float)[None]])


def _arc(centre, radii, start_deg: float, end_deg: float, n: int = 24) -> np.ndarray:
    angles = np.radians(np.linspace(start_deg, end_deg, n))
    return np.column_stack(
        [centre[0] + radii[0] * np.cos(angles), centre[1] + radii[1] * np.sin(angles)]
    )


def _in_box(template: Strokes, strokes: Strokes, rng: np.random.Generator) -> Strokes:
    """A form drawn in unit coordinates, placed in the writer's own box with their
    height and a width near their proportions, and a little hand wobble."""
    x0, y0, w, h = _box(strokes)
    width = max(w, 0.45 * h) * rng.uniform(0.85, 1.1)
    slant = rng.uniform(-0.15, 0.15)
    out = []
    for stroke in template:
        xy = stroke.copy()
        xy[:, 0] = x0 + (xy[:, 0] + slant * (1 - xy[:, 1])) * width
        xy[:, 1] = y0 + xy[:, 1] * h
        out.append(xy + rng.normal(0.0, 0.006 * h, xy.shape))
    return out


def _u(rng: np.random.Generator, low: float, high: float) -> float:
    return float(rng.uniform(low, high))


# Zero.


def slashed_zero(strokes: Strokes, rng: np.random.Generator) -> Strokes:
    x0, y0, w, h = _box(strokes)
    over = _u(rng, 0.0, 0.18)
    start = (x0 - over * w + _u(rng, -0.05, 0.1) * w, y0 + (1 + over) * h)
    end = (x0 + (1 + over) * w - _u(rng, -0.05, 0.1) * w, y0 - over * h)
    return [*strokes, _line(start, end, 16)]


def backslashed_zero(strokes: Strokes, rng: np.random.Generator) -> Strokes:
    x0, y0, w, h = _box(strokes)
    over = _u(rng, 0.0, 0.15)
    return [
        *strokes,
        _line((x0 - over * w, y0 - over * h), (x0 + (1 + over) * w, y0 + (1 + over) * h), 16),
    ]


def dotted_zero(strokes: Strokes, rng: np.random.Generator) -> Strokes:
    x0, y0, w, h = _box(strokes)
    centre = np.array([x0 + w * _u(rng, 0.42, 0.58), y0 + h * _u(rng, 0.42, 0.58)])
    return [*strokes, centre + rng.normal(0.0, 0.01 * h, (3, 2))]


# One.


def _main_stroke(strokes: Strokes) -> int:
    return int(np.argmax([np.ptp(s[:, 1]) if len(s) else 0.0 for s in strokes]))


def _flag(strokes: Strokes, rng: np.random.Generator) -> Strokes:
    h = _box(strokes)[3]
    strokes = [s.copy() for s in strokes]
    i = _main_stroke(strokes)
    stem = strokes[i]
    if stem[0, 1] > stem[-1, 1]:  # drawn upwards: the flag goes before the top anyway
        stem = stem[::-1]
    top = stem[0]
    # The continental up-stroke: from low on the left, up to the top of the stem.
    start = top + np.array([-_u(rng, 0.25, 0.5) * h, _u(rng, 0.15, 0.4) * h])
    strokes[i] = np.concatenate([_line(start, top, 14)[:-1], stem])
    return strokes


def _foot(strokes: Strokes, rng: np.random.Generator) -> Strokes:
    h = _box(strokes)[3]
    stem = strokes[_main_stroke(strokes)]
    bottom = stem[np.argmax(stem[:, 1])]
    half = _u(rng, 0.18, 0.32) * h
    y = bottom[1] + _u(rng, -0.02, 0.03) * h
    tilt = _u(rng, -0.04, 0.04) * h
    return [*strokes, _line((bottom[0] - half, y - tilt), (bottom[0] + half, y + tilt), 12)]


def continental_one_flag(strokes: Strokes, rng: np.random.Generator) -> Strokes:
    return _flag(strokes, rng)


def continental_one_foot(strokes: Strokes, rng: np.random.Generator) -> Strokes:
    return _foot(strokes, rng)


def continental_one_both(strokes: Strokes, rng: np.random.Generator) -> Strokes:
    return _foot(_flag(strokes, rng), rng)


# Two.


def _two(loop: bool, rng: np.random.Generator) -> Strokes:
    top = _arc((0.5, 0.3), (0.45, 0.28), 200, 380, 20)  # the upper bow, left to right
    corner = (_u(rng, 0.0, 0.1), 1.0)
    descent = _line(top[-1], corner, 12)
    parts = [top, descent[1:]]
    if loop:  # a small loop where the diagonal meets the base
        r = _u(rng, 0.08, 0.14)
        loop_pts = _arc((corner[0] + r, 1.0 - r), (r, r), 135, 135 - 330, 16)
        parts.append(loop_pts)
    parts.append(_line(parts[-1][-1], (_u(rng, 0.9, 1.05), 1.0 + _u(rng, -0.03, 0.03)), 10)[1:])
    return [np.concatenate(parts)]


def looped_two(strokes: Strokes, rng: np.random.Generator) -> Strokes:
    return _in_box(_two(True, rng), strokes, rng)


def plain_two(strokes: Strokes, rng: np.random.Generator) -> Strokes:
    return _in_box(_two(False, rng), strokes, rng)


# Three.


def flat_top_three(strokes: Strokes, rng: np.random.Generator) -> Strokes:
    """ʒ: a flat top bar, a diagonal to the middle, one round lower bowl."""
    mid = _u(rng, 0.38, 0.48)
    top = _path((0.05, 0.0), (0.95, 0.0), (0.3, mid), n=10)
    bowl = _arc((0.45, (1 + mid) / 2), (0.5, (1 - mid) / 2), -90, 150, 22)
    bowl = bowl - bowl[0] + top[-1]  # the bowl starts where the diagonal ends
    stroke = np.concatenate([top, bowl[1:]])
    return _in_box([stroke], strokes, rng)


# Four.


def open_four(strokes: Strokes, rng: np.random.Generator) -> Strokes:
    """Two strokes, open at the top: ㄴ with a long bar, then the stem."""
    bar = _u(rng, 0.55, 0.7)
    stem_x = _u(rng, 0.62, 0.75)
    left = _path((_u(rng, 0.05, 0.25), 0.0), (0.0, bar), (1.0, bar), n=10)
    stem = _line((stem_x, _u(rng, 0.0, 0.25)), (stem_x, 1.0), 14)
    return _in_box([left, stem], strokes, rng)


def closed_four(strokes: Strokes, rng: np.random.Generator) -> Strokes:
    """One stroke: up the stem, down the diagonal, across the bar."""
    bar = _u(rng, 0.6, 0.72)
    stem_x = _u(rng, 0.62, 0.75)
    return _in_box(
        [_path((stem_x, 1.0), (stem_x, 0.0), (0.0, bar), (1.0, bar), n=10)], strokes, rng
    )


def four_in_two_strokes(strokes: Strokes, rng: np.random.Generator) -> Strokes:
    """Closed at the top, but the diagonal-and-bar and the stem are separate strokes."""
    bar = _u(rng, 0.6, 0.72)
    stem_x = _u(rng, 0.62, 0.75)
    first = _path((stem_x + _u(rng, -0.05, 0.05), 0.0), (0.0, bar), (1.0, bar), n=10)
    return _in_box([first, _line((stem_x, 0.0), (stem_x, 1.0), 14)], strokes, rng)


# Seven.


def _stem_x(strokes: Strokes, y: float) -> float:
    points = np.concatenate(strokes)
    below_top = points[points[:, 1] > points[:, 1].min() + 0.15 * np.ptp(points[:, 1])]
    if not len(below_top):
        return float(points[:, 0].mean())
    nearest = np.argsort(np.abs(below_top[:, 1] - y))[:3]
    return float(below_top[nearest, 0].mean())


def crossed_seven(strokes: Strokes, rng: np.random.Generator) -> Strokes:
    _, y0, w, h = _box(strokes)
    y = y0 + _u(rng, 0.45, 0.6) * h
    x = _stem_x(strokes, y)
    half_left, half_right = _u(rng, 0.18, 0.32) * w, _u(rng, 0.18, 0.32) * w
    tilt = _u(rng, -0.03, 0.03) * h
    return [*strokes, _line((x - half_left, y + tilt), (x + half_right, y - tilt), 12)]


def hooked_seven(strokes: Strokes, rng: np.random.Generator) -> Strokes:
    x0, y0, w, h = _box(strokes)
    strokes = [s.copy() for s in strokes]
    # The top bar's left end: the point nearest the box's top-left corner.
    i, j = min(
        ((i, j) for i, s in enumerate(strokes) for j in (0, len(s) - 1)),
        key=lambda ij: np.hypot(*(strokes[ij[0]][ij[1]] - (x0, y0))),
    )
    end = strokes[i][j]
    below = np.add(end, (_u(rng, -0.02, 0.04) * w, _u(rng, 0.12, 0.25) * h))
    tick = _line(below, end, 8)[:-1]
    strokes[i] = (
        np.concatenate([tick, strokes[i]]) if j == 0 else np.concatenate([strokes[i], tick[::-1]])
    )
    return strokes


def crossed_hooked_seven(strokes: Strokes, rng: np.random.Generator) -> Strokes:
    return crossed_seven(hooked_seven(strokes, rng), rng)


# Nine.


def _nine(straight: bool, rng: np.random.Generator) -> Strokes:
    loop_h = _u(rng, 0.38, 0.5)
    loop = _arc((0.5, loop_h / 2), (0.5, loop_h / 2), 0, -360, 28)  # from the right, anticlockwise
    right = loop[-1]
    if straight:
        tail = _line(right, (right[0] - _u(rng, 0.0, 0.1), 1.0), 14)
    else:
        bend = _arc((right[0] - 0.35, 1.0 - 0.3), (0.35, 0.3), 0, 150, 14)
        tail = np.concatenate([_line(right, bend[0], 8), bend[1:]])
    return [np.concatenate([loop, tail[1:]])]


def straight_tail_nine(strokes: Strokes, rng: np.random.Generator) -> Strokes:
    return _in_box(_nine(True, rng), strokes, rng)


def curved_tail_nine(strokes: Strokes, rng: np.random.Generator) -> Strokes:
    return _in_box(_nine(False, rng), strokes, rng)


STYLES: dict[str, Style] = {
    s.name: s
    for s in (
        Style("slashed-zero", 0, slashed_zero, "Ø: a zero with a slash through it"),
        Style("continental-one-flag", 1, continental_one_flag, "a one with a long up-stroke flag"),
        Style("continental-one-foot", 1, continental_one_foot, "a one standing on a foot"),
        Style("continental-one-both", 1, continental_one_both, "a one with a flag and a foot"),
        Style("plain-two", 2, plain_two, "a two without a loop"),
        Style("looped-two", 2, looped_two, "a two with a loop at its base"),
        Style("flat-top-three", 3, flat_top_three, "ʒ: a three with a flat top bar"),
        Style("open-four", 4, open_four, "a four open at the top, in two strokes"),
        Style("closed-four", 4, closed_four, "a closed four in one stroke"),
        Style("four-in-two-strokes", 4, four_in_two_strokes, "a closed four in two strokes"),
        Style("crossed-seven", 7, crossed_seven, "a seven with a bar through its stem"),
        Style("hooked-seven", 7, hooked_seven, "a seven with a hook down from its top bar"),
        Style("crossed-hooked-seven", 7, crossed_hooked_seven, "crossed and hooked"),
        Style("straight-tail-nine", 9, straight_tail_nine, "a nine with a straight stem"),
        Style("curved-tail-nine", 9, curved_tail_nine, "a nine whose tail curls left"),
    )
}

PROBES: dict[str, Style] = {
    s.name: s
    for s in (
        Style("backslashed-zero", 0, backslashed_zero, "a zero slashed the other way"),
        Style("dotted-zero", 0, dotted_zero, "a zero with a dot in the middle"),
    )
}

ALL_STYLES = {**STYLES, **PROBES}


def styles_of(digit: int, styles: dict[str, Style] = STYLES) -> list[Style]:
    return [s for s in styles.values() if s.digit == digit]
