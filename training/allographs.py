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

Each style is a continuous family, not an exemplar: its shape parameters (a
slash's angle and reach past the oval, a flag's length and angle, where a seven
is crossed, …) are drawn from ranges as wide as real writers use (looked at on
the UJI continental writers and on our misreads of them). A family's main
parameters are :class:`Span` s with a held-out band inside their range: training
never draws from it, and the *disjoint* style test draws only from it, so that
test measures how a family generalises to shapes between those it was taught,
not memory.

Strokes are in canvas pixels, y down (``classifier.canvas``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from training.shapes import Span, Strokes, arc, box, in_box, line, path, u


@dataclass(frozen=True)
class Style:
    name: str
    digit: int
    # (strokes, rng, held_out=False) → the strokes in this style; ``held_out``:
    # draw the family's parameters from its held-out bands (the disjoint test).
    make: Callable[..., Strokes]
    description: str
    # Whether the family has held-out bands (is in the disjoint style test).
    disjoint: bool = False


# Zero.


# The slash's angle above the horizontal (degrees: ∅ at 40, φ near 85), and how
# far it runs past the oval, as a share of the oval's height at each end.
SLASH_ANGLE = Span(35.0, 88.0, 58.0, 64.0)
SLASH_REACH = Span(-0.05, 0.6, 0.28, 0.34)


def slashed_zero(strokes: Strokes, rng: np.random.Generator, held_out: bool = False) -> Strokes:
    """Ø and φ: a slash through the oval, from a short diagonal inside it to a long
    near-vertical stroke far past its top and bottom, anywhere near its centre."""
    x0, y0, w, h = box(strokes)
    angle = np.radians(SLASH_ANGLE.draw(rng, held_out))
    reach = SLASH_REACH.draw(rng, held_out)
    direction = np.array([np.cos(angle), -np.sin(angle)])  # up and to the right
    half = (0.5 + reach) * min(h / np.sin(angle), w / max(np.cos(angle), 1e-3))
    centre = np.array([x0 + w * u(rng, 0.42, 0.58), y0 + h * u(rng, 0.42, 0.58)])
    start, end = centre - half * direction, centre + half * direction
    return [*strokes, line(start, end, 16)]


# θ: a bar across the middle, from inside the oval to well past its sides.
BAR_REACH = Span(-0.3, 0.45, 0.05, 0.12)


def barred_zero(strokes: Strokes, rng: np.random.Generator, held_out: bool = False) -> Strokes:
    x0, y0, w, h = box(strokes)
    half = (0.5 + BAR_REACH.draw(rng, held_out)) * w
    x, y = x0 + w * u(rng, 0.45, 0.55), y0 + h * u(rng, 0.4, 0.6)
    tilt = np.tan(np.radians(u(rng, -10, 10))) * half
    return [*strokes, line((x - half, y + tilt), (x + half, y - tilt), 14)]


def backslashed_zero(strokes: Strokes, rng: np.random.Generator) -> Strokes:
    x0, y0, w, h = box(strokes)
    over = u(rng, 0.0, 0.15)
    return [
        *strokes,
        line((x0 - over * w, y0 - over * h), (x0 + (1 + over) * w, y0 + (1 + over) * h), 16),
    ]


def dotted_zero(strokes: Strokes, rng: np.random.Generator) -> Strokes:
    x0, y0, w, h = box(strokes)
    centre = np.array([x0 + w * u(rng, 0.42, 0.58), y0 + h * u(rng, 0.42, 0.58)])
    return [*strokes, centre + rng.normal(0.0, 0.01 * h, (3, 2))]


# One.


def _main_stroke(strokes: Strokes) -> int:
    return int(np.argmax([np.ptp(s[:, 1]) if len(s) else 0.0 for s in strokes]))


# The continental 1's up-stroke: its length (a share of the stem) and its angle
# below the horizontal (degrees: near 10 it is long and flat, as many real
# writers make it, and only the missing bar tells it from a 7).
FLAG_LENGTH = Span(0.18, 0.62, 0.38, 0.44)
FLAG_ANGLE = Span(8.0, 62.0, 24.0, 30.0)
FOOT_HALF = Span(0.12, 0.36, 0.22, 0.26)


def _flag(strokes: Strokes, rng: np.random.Generator, held_out: bool) -> Strokes:
    h = box(strokes)[3]
    strokes = [s.copy() for s in strokes]
    i = _main_stroke(strokes)
    stem = strokes[i]
    if stem[0, 1] > stem[-1, 1]:  # drawn upwards: the flag goes before the top anyway
        stem = stem[::-1]
    top = stem[0]
    # The up-stroke: from low on the left, up to the top of the stem.
    length = FLAG_LENGTH.draw(rng, held_out) * h
    angle = np.radians(FLAG_ANGLE.draw(rng, held_out))
    start = top + length * np.array([-np.cos(angle), np.sin(angle)])
    strokes[i] = np.concatenate([line(start, top, 14)[:-1], stem])
    return strokes


def _foot(strokes: Strokes, rng: np.random.Generator, held_out: bool) -> Strokes:
    h = box(strokes)[3]
    stem = strokes[_main_stroke(strokes)]
    bottom = stem[np.argmax(stem[:, 1])]
    half = FOOT_HALF.draw(rng, held_out) * h
    y = bottom[1] + u(rng, -0.02, 0.03) * h
    tilt = u(rng, -0.04, 0.04) * h
    return [*strokes, line((bottom[0] - half, y - tilt), (bottom[0] + half, y + tilt), 12)]


def continental_one_flag(strokes: Strokes, rng: np.random.Generator, held_out: bool = False):
    return _flag(strokes, rng, held_out)


def continental_one_foot(strokes: Strokes, rng: np.random.Generator, held_out: bool = False):
    return _foot(strokes, rng, held_out)


def continental_one_both(strokes: Strokes, rng: np.random.Generator, held_out: bool = False):
    return _foot(_flag(strokes, rng, held_out), rng, held_out)


# Two.


def _two(loop: bool, rng: np.random.Generator) -> Strokes:
    top = arc((0.5, 0.3), (0.45, 0.28), 200, 380, 20)  # the upper bow, left to right
    corner = (u(rng, 0.0, 0.1), 1.0)
    descent = line(top[-1], corner, 12)
    parts = [top, descent[1:]]
    if loop:  # a small loop where the diagonal meets the base
        r = u(rng, 0.08, 0.14)
        loop_pts = arc((corner[0] + r, 1.0 - r), (r, r), 135, 135 - 330, 16)
        parts.append(loop_pts)
    parts.append(line(parts[-1][-1], (u(rng, 0.9, 1.05), 1.0 + u(rng, -0.03, 0.03)), 10)[1:])
    return [np.concatenate(parts)]


def looped_two(strokes: Strokes, rng: np.random.Generator) -> Strokes:
    return in_box(_two(True, rng), strokes, rng)


def plain_two(strokes: Strokes, rng: np.random.Generator) -> Strokes:
    return in_box(_two(False, rng), strokes, rng)


# Three.


def flat_top_three(strokes: Strokes, rng: np.random.Generator) -> Strokes:
    """ʒ: a flat top bar, a diagonal to the middle, one round lower bowl."""
    mid = u(rng, 0.38, 0.48)
    top = path((0.05, 0.0), (0.95, 0.0), (0.3, mid), n=10)
    bowl = arc((0.45, (1 + mid) / 2), (0.5, (1 - mid) / 2), -90, 150, 22)
    bowl = bowl - bowl[0] + top[-1]  # the bowl starts where the diagonal ends
    stroke = np.concatenate([top, bowl[1:]])
    return in_box([stroke], strokes, rng)


# Four.


def open_four(strokes: Strokes, rng: np.random.Generator) -> Strokes:
    """Two strokes, open at the top: ㄴ with a long bar, then the stem."""
    bar = u(rng, 0.55, 0.7)
    stem_x = u(rng, 0.62, 0.75)
    left = path((u(rng, 0.05, 0.25), 0.0), (0.0, bar), (1.0, bar), n=10)
    stem = line((stem_x, u(rng, 0.0, 0.25)), (stem_x, 1.0), 14)
    return in_box([left, stem], strokes, rng)


OPEN_FOUR_BAR = Span(0.5, 0.78, 0.62, 0.66)


def open_four_one_stroke(
    strokes: Strokes, rng: np.random.Generator, held_out: bool = False
) -> Strokes:
    """Open at the top in one stroke: down to the bar, across it, back to the stem,
    up to its top and down the stem over the same line."""
    bar = OPEN_FOUR_BAR.draw(rng, held_out)
    stem_x = u(rng, 0.6, 0.75)
    across = min(1.0, stem_x + u(rng, 0.15, 0.3))
    top = u(rng, 0.0, 0.2)
    corners = ((u(rng, 0.05, 0.3), 0.0), (0.0, bar), (across, bar), (stem_x, bar - 0.02),
               (stem_x, top), (stem_x + u(rng, -0.04, 0.04), 1.0))  # fmt: skip
    return in_box([path(*corners, n=10)], strokes, rng)


# Five.

FLAG_LIFT = Span(0.0, 0.2, 0.09, 0.12)


def five_detached_flag(
    strokes: Strokes, rng: np.random.Generator, held_out: bool = False
) -> Strokes:
    """The top bar written last and apart: lifted above the body, or off to the
    right, not touching the stem (read as 3 on scans)."""
    lift = FLAG_LIFT.draw(rng, held_out)
    stem_x = u(rng, 0.05, 0.2)
    waist = u(rng, 0.38, 0.48)
    body = np.concatenate([
        line((stem_x + 0.05, 0.1), (stem_x, waist), 8)[:-1],
        arc((0.5, (1 + waist) / 2 + 0.02), (0.45, (1 - waist) / 2), -150, 140, 24),
    ])  # fmt: skip
    shift = u(rng, 0.0, 0.15)
    flag = line((stem_x + 0.05 + shift, 0.1 - lift), (0.95 + shift, 0.05 - lift), 10)
    return in_box([body, flag], strokes, rng)


def closed_four(strokes: Strokes, rng: np.random.Generator) -> Strokes:
    """One stroke: up the stem, down the diagonal, across the bar."""
    bar = u(rng, 0.6, 0.72)
    stem_x = u(rng, 0.62, 0.75)
    return in_box([path((stem_x, 1.0), (stem_x, 0.0), (0.0, bar), (1.0, bar), n=10)], strokes, rng)


def four_in_two_strokes(strokes: Strokes, rng: np.random.Generator) -> Strokes:
    """Closed at the top, but the diagonal-and-bar and the stem are separate strokes."""
    bar = u(rng, 0.6, 0.72)
    stem_x = u(rng, 0.62, 0.75)
    first = path((stem_x + u(rng, -0.05, 0.05), 0.0), (0.0, bar), (1.0, bar), n=10)
    return in_box([first, line((stem_x, 0.0), (stem_x, 1.0), 14)], strokes, rng)


# Seven.


def _stem_x(strokes: Strokes, y: float) -> float:
    points = np.concatenate(strokes)
    below_top = points[points[:, 1] > points[:, 1].min() + 0.15 * np.ptp(points[:, 1])]
    if not len(below_top):
        return float(points[:, 0].mean())
    nearest = np.argsort(np.abs(below_top[:, 1] - y))[:3]
    return float(below_top[nearest, 0].mean())


# Where the bar crosses the seven's stem (a share of its height from the top),
# and how far it reaches each side (a share of its width).
CROSS_HEIGHT = Span(0.38, 0.66, 0.5, 0.54)
CROSS_REACH = Span(0.14, 0.4, 0.25, 0.29)


def crossed_seven(strokes: Strokes, rng: np.random.Generator, held_out: bool = False) -> Strokes:
    _, y0, w, h = box(strokes)
    y = y0 + CROSS_HEIGHT.draw(rng, held_out) * h
    x = _stem_x(strokes, y)
    half_left = CROSS_REACH.draw(rng, held_out) * w
    half_right = CROSS_REACH.draw(rng, held_out) * w
    tilt = np.tan(np.radians(u(rng, -5.0, 5.0))) * (half_left + half_right) / 2  # a bar's slope
    return [*strokes, line((x - half_left, y + tilt), (x + half_right, y - tilt), 12)]


def crossed_seven_one_stroke(
    strokes: Strokes, rng: np.random.Generator, held_out: bool = False
) -> Strokes:
    """A crossed 7 without lifting the pen: the top bar, down the stem to the
    middle, a small loop back to the left, the bar across to the right, back to
    the stem and on down (read as 2 when the loop is mistaken for a 2's)."""
    cross = CROSS_HEIGHT.draw(rng, held_out)
    reach = CROSS_REACH.draw(rng, held_out) / 0.27  # relative to a typical reach
    top_left, top_right = (0.0, u(rng, -0.02, 0.04)), (1.0, 0.0)
    bottom = (u(rng, 0.2, 0.45), 1.0)

    def stem(y: float) -> float:  # the stem's x at height y, top right to bottom
        return 1.0 + (bottom[0] - 1.0) * y

    x = stem(cross)
    loop = arc((x - 0.12 * reach, cross + 0.03), (0.12 * reach, 0.06), 30, 200, 12)
    drawn = np.concatenate([
        line(top_left, top_right, 12)[:-1],
        line(top_right, (stem(cross - 0.02), cross - 0.02), 10)[:-1],
        loop[:-1],
        line(loop[-1], (x + 0.3 * reach, cross - 0.02), 10)[:-1],
        line((x + 0.3 * reach, cross - 0.02), (stem(cross + 0.06), cross + 0.06), 6)[:-1],
        line((stem(cross + 0.06), cross + 0.06), bottom, 10),
    ])  # fmt: skip
    return in_box([drawn], strokes, rng)


def hooked_seven(strokes: Strokes, rng: np.random.Generator) -> Strokes:
    x0, y0, w, h = box(strokes)
    strokes = [s.copy() for s in strokes]
    # The top bar's left end: the point nearest the box's top-left corner.
    i, j = min(
        ((i, j) for i, s in enumerate(strokes) for j in (0, len(s) - 1)),
        key=lambda ij: np.hypot(*(strokes[ij[0]][ij[1]] - (x0, y0))),
    )
    end = strokes[i][j]
    below = np.add(end, (u(rng, -0.02, 0.04) * w, u(rng, 0.12, 0.25) * h))
    tick = line(below, end, 8)[:-1]
    strokes[i] = (
        np.concatenate([tick, strokes[i]]) if j == 0 else np.concatenate([strokes[i], tick[::-1]])
    )
    return strokes


def crossed_hooked_seven(strokes: Strokes, rng: np.random.Generator) -> Strokes:
    return crossed_seven(hooked_seven(strokes, rng), rng)


# Nine.


def _nine(straight: bool, rng: np.random.Generator) -> Strokes:
    loop_h = u(rng, 0.38, 0.5)
    loop = arc((0.5, loop_h / 2), (0.5, loop_h / 2), 0, -360, 28)  # from the right, anticlockwise
    right = loop[-1]
    if straight:
        tail = line(right, (right[0] - u(rng, 0.0, 0.1), 1.0), 14)
    else:
        bend = arc((right[0] - 0.35, 1.0 - 0.3), (0.35, 0.3), 0, 150, 14)
        tail = np.concatenate([line(right, bend[0], 8), bend[1:]])
    return [np.concatenate([loop, tail[1:]])]


def straight_tail_nine(strokes: Strokes, rng: np.random.Generator) -> Strokes:
    return in_box(_nine(True, rng), strokes, rng)


def curved_tail_nine(strokes: Strokes, rng: np.random.Generator) -> Strokes:
    return in_box(_nine(False, rng), strokes, rng)


# fmt: off
STYLES: dict[str, Style] = {
    s.name: s
    for s in (
        Style("slashed-zero", 0, slashed_zero,
              "Ø to φ: a slash through a zero, inside it or far past it", disjoint=True),
        Style("barred-zero", 0, barred_zero, "θ: a zero with a bar across", disjoint=True),
        Style("dotted-zero", 0, dotted_zero, "a zero with a dot in the middle"),
        Style("continental-one-flag", 1, continental_one_flag,
              "a one with an up-stroke flag, short and steep to long and flat", disjoint=True),
        Style("continental-one-foot", 1, continental_one_foot, "a one standing on a foot",
              disjoint=True),
        Style("continental-one-both", 1, continental_one_both, "a one with a flag and a foot",
              disjoint=True),
        Style("plain-two", 2, plain_two, "a two without a loop"),
        Style("looped-two", 2, looped_two, "a two with a loop at its base"),
        Style("flat-top-three", 3, flat_top_three, "ʒ: a three with a flat top bar"),
        Style("open-four", 4, open_four, "a four open at the top, in two strokes"),
        Style("open-four-one-stroke", 4, open_four_one_stroke,
              "a four open at the top, in one stroke", disjoint=True),
        Style("closed-four", 4, closed_four, "a closed four in one stroke"),
        Style("four-in-two-strokes", 4, four_in_two_strokes, "a closed four in two strokes"),
        Style("five-detached-flag", 5, five_detached_flag,
              "a five whose top bar is apart from its body", disjoint=True),
        Style("crossed-seven", 7, crossed_seven, "a seven with a bar through its stem",
              disjoint=True),
        Style("crossed-seven-one-stroke", 7, crossed_seven_one_stroke,
              "a crossed seven in one stroke, with its loop", disjoint=True),
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
    )
}

# fmt: on
ALL_STYLES = {**STYLES, **PROBES}


def styles_of(digit: int, styles: dict[str, Style] = STYLES) -> list[Style]:
    return [s for s in styles.values() if s.digit == digit]
