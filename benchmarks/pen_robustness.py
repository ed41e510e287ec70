"""How the two views hold up when held-out writers write as other people and devices do.

    .venv/bin/python benchmarks/pen_robustness.py [--model DIR ...]

The held-out writers (the pen digits' 6 test writers and UJI's 20) are a
friendlier world than the one people draw in: one tablet each, one habit each.
This sends the same drawings changed the ways real pens, fingers and hands
change them, each change fixed (a seeded generator) so that two models, or two
runs, see the very same drawings, and prints the picture alone, the pen alone
and both (as served with strokes): accuracy, answers "sure" but wrong, and
misreads flagged "not sure". Several ``--model`` directories are scored one
after the other on the same drawings.

The changes are what no training set of ours is made from: they are defined
here, not drawn from ``training.strokes``' ranges, and some go past them (a
14° turn, a 0.55 slant) on purpose. A model's figures here are proxies, not
the world's: they show where the pen view breaks, not by how much people win.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import _django  # noqa: F401
import numpy as np

from classifier.registry import BOOTSTRAP_DIR
from training import strokes as stroke_space
from training.config import TrainConfig
from training.management.commands.evaluate import load_pen_view, load_predictor
from training.pen_data import PenSet, load_pen_data
from training.pen_view import report

Strokes = list[np.ndarray]


def _path_length(stroke: np.ndarray) -> float:
    return float(np.hypot(*np.diff(stroke[:, :2], axis=0).T).sum()) if len(stroke) > 1 else 0.0


def _about_centre(strokes: Strokes, matrix: np.ndarray) -> Strokes:
    points = np.concatenate(strokes)[:, :2]
    centre = (points.min(axis=0) + points.max(axis=0)) / 2
    return [(s[:, :2] - centre) @ matrix.T + centre for s in strokes]


def _respaced(strokes: Strokes, spacing: float, noise: float, rng) -> Strokes:
    """Each stroke with points every ``spacing`` px of its path (a tablet's sparse
    points or a mouse's dense ones), jittered by ``noise`` px and rounded to whole
    pixels when there is noise (a mouse reports integers)."""
    out = []
    for stroke in strokes:
        points = stroke_space.resample(stroke[:, :2], spacing)
        out.append(np.round(points + rng.normal(0, noise, points.shape)) if noise else points)
    return out


def pen_lifted(strokes: Strokes, rng) -> Strokes:
    """The longest stroke broken in two, a third to two thirds along its points."""
    i = int(np.argmax([_path_length(s) for s in strokes]))
    stroke = strokes[i]
    if len(stroke) < 6:
        return strokes
    k = int(rng.integers(len(stroke) // 3, 2 * len(stroke) // 3 + 1))
    return [*strokes[:i], stroke[:k], stroke[k:], *strokes[i + 1 :]]


def pen_down_hooks(strokes: Strokes, rng) -> Strokes:
    """A tablet's hook where the pen lands: a short tick, 4 to 8 % of the drawing, into
    every stroke's start from a random direction."""
    extent = float(np.ptp(np.concatenate(strokes)[:, :2], axis=0).max()) or 1.0
    out = []
    for stroke in strokes:
        if len(stroke) < 3:
            out.append(stroke)
            continue
        angle, length = rng.uniform(0, 2 * np.pi), rng.uniform(0.04, 0.08) * extent
        tip = stroke[0, :2] + length * np.array([np.cos(angle), np.sin(angle)])
        out.append(np.vstack([np.linspace(tip, stroke[0, :2], 4)[:-1], stroke[:, :2]]))
    return out


def stray_dot(strokes: Strokes, rng) -> Strokes:
    """A tap inside the drawing's box after it is written."""
    points = np.concatenate(strokes)[:, :2]
    low, high = points.min(axis=0), points.max(axis=0)
    return [*strokes, (low + rng.uniform(0.2, 0.8, 2) * (high - low))[None, :]]


def turned(degrees: float) -> Callable[[Strokes, np.random.Generator], Strokes]:
    def change(strokes: Strokes, rng) -> Strokes:
        return _about_centre(
            strokes, stroke_space.rotation(np.radians(degrees) * rng.choice([-1, 1]))
        )

    return change


def slanted(shear: float) -> Callable[[Strokes, np.random.Generator], Strokes]:
    def change(strokes: Strokes, rng) -> Strokes:
        return _about_centre(strokes, np.array([[1.0, -shear * rng.choice([-1, 1])], [0.0, 1.0]]))

    return change


def stretched(strokes: Strokes, rng) -> Strokes:
    """Half the drawings 45 % wider, half 40 % narrower."""
    return _about_centre(strokes, np.diag([1.45 if rng.random() < 0.5 else 0.6, 1.0]))


CHANGES: dict[str, Callable[[Strokes, np.random.Generator], Strokes] | None] = {
    "as drawn": None,
    "pen lifted once mid-stroke": pen_lifted,
    "a hook where the pen lands": pen_down_hooks,
    "every stroke drawn backwards": lambda strokes, rng: [s[::-1] for s in strokes],
    "strokes in reverse order": lambda strokes, rng: strokes[::-1],
    "turned 14°": turned(14.0),
    "slanted 0.55": slanted(0.55),
    "stretched or squeezed": stretched,
    "a tablet's sparse points (14 px)": lambda strokes, rng: _respaced(strokes, 14.0, 0.0, rng),
    "a mouse's dense, jagged points": lambda strokes, rng: _respaced(strokes, 2.0, 0.8, rng),
    "a stray tap inside the box": stray_dot,
}


def changed(test: PenSet, name: str) -> PenSet:
    change = CHANGES[name]
    drawings = [[np.asarray(s, np.float64)[:, :2] for s in d] for d in test.strokes]
    if change is not None:
        rng = np.random.default_rng(sorted(CHANGES).index(name))
        drawings = [change(d, rng) for d in drawings]
    return PenSet(drawings, test.y, test.weight, test.group)


def _cell(scores: dict) -> str:
    wrong = scores["sure_but_wrong"]
    return f"{scores['accuracy'] * 100:6.2f} % ({(wrong or 0) * 100:.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, action="append", help="a model directory")
    args = parser.parse_args()
    directories = args.model or [BOOTSTRAP_DIR]
    held_out = load_pen_data(TrainConfig(sources=("mnist", "pendigits"))).tests
    sets = {name: held_out[name] for name in ("pendigits", "ujipen") if name in held_out}
    print("accuracy (answers 'sure' but wrong, %); misreads flagged 'not sure'")
    for directory in directories:
        image, (pen_view, combination) = load_predictor(directory), load_pen_view(directory)
        if pen_view is None:
            raise SystemExit(f"{directory} has no pen view.")
        for set_name, test in sets.items():
            print(f"\n{directory} — {set_name} ({len(test)} drawings, held-out writers)")
            print(f"{'':34s} {'picture':>16s} {'pen':>16s} {'both':>16s}  flagged")
            for name in CHANGES:
                scores = report(image, pen_view, combination, {"x": changed(test, name)})["x"]
                both = scores["combined"]
                misreads = round((1 - both["accuracy"]) * len(test))
                flagged = round((both["misreads_flagged"] or 0) * misreads)
                print(
                    f"{name:34s} {_cell(scores['image']):>16s} {_cell(scores['pen']):>16s} "
                    f"{_cell(both):>16s}  {flagged}/{misreads}"
                )


if __name__ == "__main__":
    main()
