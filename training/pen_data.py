"""The pen view's data: drawings as strokes, never rendered.

The pen digits' and UJI's writers split by person as the image sources are, the
approved contributions with strokes, and what training makes of them: fresh
stroke-space variants and allographs every epoch, drawings written in another
stroke order, and ink that is no digit. No TensorFlow: ``training.pen_view``
trains on it.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass, field

import numpy as np

from classifier import canvas, pen
from collector.formats import DatasetError
from training import allographs
from training import strokes as stroke_space
from training.config import TrainConfig

Strokes = list[np.ndarray]
logger = logging.getLogger(__name__)
# How much more a UJI training writer's digit, and a contributed drawing, counts
# than a pen-digit writer's: real hands unlike the pen digits' are few.
UJI_WEIGHT = 3.0
CONTRIBUTED_WEIGHT = 3.0


def strokes_digest(drawings, digest=None):
    """A sha256 of drawings' strokes (their x, y in order; never their timing): the
    one way a set of drawings is keyed in a cache. ``digest``: one to update."""
    import hashlib

    digest = digest or hashlib.sha256()
    for strokes in drawings:
        for stroke in strokes:
            digest.update(np.ascontiguousarray(stroke[:, :2], np.float64).tobytes())
        digest.update(b"|")
    return digest


@dataclass
class PenSet:
    """Labelled drawings as strokes (canvas pixels, the page's coordinates)."""

    strokes: list[Strokes] = field(default_factory=list)
    y: list[int] = field(default_factory=list)
    weight: list[float] = field(default_factory=list)
    group: list[str] = field(default_factory=list)  # which collection of writers

    def __len__(self) -> int:
        return len(self.y)

    def add(self, strokes: Strokes, label: int, weight: float = 1.0, group: str = "") -> None:
        self.strokes.append(strokes)
        self.y.append(int(label))
        self.weight.append(float(weight))
        self.group.append(group)

    def group_weights(self) -> np.ndarray:
        """Per drawing, so that each collection of writers counts the same in all."""
        groups = np.asarray(self.group)
        out = np.ones(len(groups))
        for name in set(self.group):
            out[groups == name] = len(groups) / (len(set(self.group)) * (groups == name).sum())
        return out

    def labels(self) -> np.ndarray:
        return np.asarray(self.y, np.int64)

    def subset(self, keep) -> PenSet:
        """The drawings at the indices ``keep``, in that order."""
        return PenSet(
            [self.strokes[i] for i in keep],
            [self.y[i] for i in keep],
            [self.weight[i] for i in keep],
            [self.group[i] for i in keep],
        )


@dataclass
class PenData:
    train: PenSet
    val: PenSet
    tests: dict[str, PenSet]


def compact(strokes: Strokes) -> Strokes:
    """A drawing's strokes as the pen view keeps them: x and y only, as float32 (a
    third of the page's ``[x, y, t]`` float64: the pen view reads geometry and
    order, never timing, and a million drawings' strokes are held while it trains)."""
    return [np.ascontiguousarray(s[:, :2], np.float32) for s in strokes]


def load_pen_data(config: TrainConfig, sources: Collection[str] | None = None) -> PenData:
    """Every source with strokes, split by writer as the image sources are: the pen
    digits' and UJI's training writers (and contributed training drawings) train
    (UJI's whenever the run trains on pen digits: real continental hands are what
    the pen view needs most);
    their validation writers (and contributed validation drawings) fit the
    combination; their test writers and the contributed test drawings are the
    test sets ``pendigits``, ``ujipen`` and ``drawings-test``, the same images the
    image view is scored on. ``sources``: what the run's image data holds (by
    default the configuration's sources): the pen view trains on the same."""
    from collector.models import Drawing
    from training.sources import drawings as drawing_source
    from training.sources import pendigits, ujipen

    train, val = PenSet(), PenSet()
    tests: dict[str, PenSet] = {}
    held_out = pendigits.PENDIGITS_TEST_WRITERS | pendigits.PENDIGITS_VAL_WRITERS
    sources = set(config.sources if sources is None else sources)
    if "pendigits" in sources:
        tests["pendigits"] = PenSet()
        for digit in pendigits.load_pendigit_strokes():
            strokes = canvas.fit_to_canvas(digit.strokes)
            if digit.writer in pendigits.PENDIGITS_TEST_WRITERS:
                tests["pendigits"].add(strokes, digit.label)
            elif digit.writer in held_out:
                val.add(strokes, digit.label, group="pendigits")
            else:
                train.add(strokes, digit.label, group="pendigits")
    try:
        uji = ujipen.load_ujipen_strokes()
    except DatasetError as exc:  # the image side reports the missing file
        logger.warning("The pen view goes without the UJI writers: %s", exc)
        uji = []
    if uji:
        tests["ujipen"] = PenSet()
        for digit in uji:
            role = ujipen.role(digit.writer)
            target = {"train": train, "val": val, "test": tests["ujipen"]}[role]
            if role == "train" and not {"ujipen", "pendigits"} & sources:
                continue  # a run without pen sources still judges on the held-out writers
            # Real continental hands are few beside the pen digits' 30 writers.
            weight = UJI_WEIGHT if role == "train" else 1.0
            target.add(ujipen.on_canvas(digit), digit.label, weight, group="ujipen")
    if "drawings" in sources:
        # The drawings the image view reads (the same sample, split by split).
        exclude = (drawing_source.PENDIGITS_IMPORT,) if "pendigits" in sources else ()
        parts = drawing_source.run_drawings(config, exclude).values()
        contributed_test = PenSet()
        fields = ("strokes", "label", "split", "source")
        drawings = (
            row
            for rows in parts
            for row in rows.exclude(strokes=None)
            .order_by("id")
            .values_list(*fields)
            .iterator(chunk_size=1000)
        )
        for stored, label, split, source in drawings:
            try:
                strokes = compact(canvas.parse_strokes(stored))
            except canvas.InvalidStrokes:  # stored before today's rules: its picture only
                continue
            if split == Drawing.Split.TEST:
                contributed_test.add(strokes, label)
            elif split == Drawing.Split.VAL:
                val.add(strokes, label, group="drawings")
            else:
                weight = config.correction_weight if source == "correction" else 1.0
                train.add(strokes, label, weight * CONTRIBUTED_WEIGHT, group="drawings")
        if len(contributed_test):
            tests["drawings-test"] = contributed_test
    return PenData(train, val, tests)


def rewritten(strokes: Strokes, rng: np.random.Generator) -> Strokes:
    """The same drawing written in another order, as people do: a closed loop (a 0,
    an 8) begun at another point, a stroke drawn the other way, strokes in another
    order, the pen lifted once mid-stroke (:func:`lifted`). The shape stays; what
    the pen view may take for granted about order and direction does not, so one
    writer's habit is not mistaken for the digit."""
    out = []
    for stroke in strokes:
        if len(stroke) > 8 and rng.random() < 0.3:
            extent = float(np.ptp(stroke[:, :2], axis=0).max()) or 1.0
            if np.linalg.norm(stroke[0, :2] - stroke[-1, :2]) < 0.25 * extent:  # a loop
                stroke = np.roll(stroke[:-1], int(rng.integers(1, len(stroke) - 1)), axis=0)
        if rng.random() < 0.12:
            stroke = stroke[::-1]
        out.append(stroke)
    if len(out) > 1 and rng.random() < 0.15:
        out = [out[i] for i in rng.permutation(len(out))]
    if rng.random() < LIFTED_SHARE:
        out = lifted(out, rng)
    return out


# How often a drawing is written with the pen lifted once mid-stroke.
LIFTED_SHARE = 0.12


def lifted(strokes: Strokes, rng: np.random.Generator) -> Strokes:
    """The same drawing with the pen lifted once where the writer did not mean to: a
    finger that loses the glass, a light pen that skips. One stroke (a long one more
    likely) becomes two, in order and in the same direction, sometimes with a short
    piece between them never drawn. The pen view reads where strokes start; a
    stroke that broke must not turn a 1 into a 4 or a 7."""
    lengths = np.array(
        [float(np.hypot(*np.diff(s[:, :2], axis=0).T).sum()) if len(s) >= 6 else 0.0
         for s in strokes]
    )  # fmt: skip
    if lengths.sum() <= 0:
        return strokes
    i = int(rng.choice(len(strokes), p=lengths / lengths.sum()))
    stroke = strokes[i]
    along = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(stroke[:, :2], axis=0).T))])
    cut = rng.uniform(0.2, 0.8) * along[-1]
    skipped = rng.uniform(0.0, 0.06) * along[-1] if rng.random() < 0.5 else 0.0
    end = int(np.searchsorted(along, cut))
    resume = int(np.searchsorted(along, cut + skipped))
    end, resume = max(end, 2), max(resume, end)
    if end >= len(stroke) - 1 or resume >= len(stroke) - 1:
        return strokes
    return [*strokes[:i], stroke[:end], stroke[resume:], *strokes[i + 1 :]]


# Ink that is not a digit (yet) is trained towards "any digit, equally": a share of
# every epoch, so the pen view says "I cannot tell" where the picture alone might
# say "8, 99.9 %" (a dash, a scribble, a digit half drawn).
JUNK_SHARE = 0.08


def junk_strokes(rng: np.random.Generator, digits: PenSet | None = None) -> Strokes:
    """One drawing that is no digit, in canvas pixels: a dash or a slash (never near
    upright: that is a 1), a scribble, a few scattered marks, or the first part of
    a real drawing of any digit but 1 (what the page sends mid-stroke)."""
    kind = int(rng.integers(4 if digits is not None and len(digits) else 3))
    centre = rng.uniform(70, 186, 2)
    size = rng.uniform(60, 200)
    if kind == 0:  # a straight line, 0° to 55° off horizontal, either way, either slope
        angle = np.radians(rng.uniform(0, 55)) * rng.choice([-1, 1])
        half = size / 2 * np.array([np.cos(angle), np.sin(angle)])
        line = np.linspace(-1, 1, int(rng.integers(8, 40)))[:, None] * half + centre
        return [line if rng.random() < 0.5 else line[::-1]]
    if kind == 1:  # a scribble: a smooth random walk that crosses itself
        steps = rng.normal(0, 1, (int(rng.integers(30, 90)), 2)).cumsum(axis=0)
        steps = np.cumsum(steps - steps.mean(axis=0), axis=0)
        extent = float(np.ptp(steps, axis=0).max()) or 1.0
        return [(steps - steps.mean(axis=0)) / extent * size + centre]
    if kind == 2:  # a few short marks scattered about
        marks = []
        for _ in range(int(rng.integers(3, 7))):
            start = rng.uniform(30, 226, 2)
            marks.append(np.linspace(start, start + rng.normal(0, 12, 2), 5))
        return marks
    # the first 15 to 45 % of a real drawing's path; never one that is a tall, narrow
    # stroke (the start of a 4 or a 5 is a 1 as far as anyone can tell)
    for _ in range(20):
        part = _first_part(digits, rng)
        points = np.concatenate(part)
        width, height = np.ptp(points, axis=0)
        if width > 0.5 * height:
            return part
    return junk_strokes(rng)


def _first_part(digits: PenSet, rng: np.random.Generator) -> Strokes:
    index = int(rng.integers(len(digits)))
    while digits.y[index] == 1:
        index = int(rng.integers(len(digits)))
    strokes = [np.asarray(s, np.float64)[:, :2] for s in digits.strokes[index] if len(s)]
    lengths = [float(np.linalg.norm(np.diff(s, axis=0), axis=1).sum()) for s in strokes]
    budget = sum(lengths) * rng.uniform(0.15, 0.45)
    out = []
    for stroke, length in zip(strokes, lengths, strict=True):
        if budget <= 0:
            break
        if length <= budget:
            out.append(stroke)
        else:
            along = np.concatenate(
                [[0.0], np.linalg.norm(np.diff(stroke, axis=0), axis=1).cumsum()]
            )
            out.append(stroke[: max(2, int(np.searchsorted(along, budget)))])
        budget -= length
    return out


def varied_features(data: PenSet, rng: np.random.Generator, style_share: float = 0.2) -> np.ndarray:
    """One fresh stroke-space variant of every training drawing (some in another
    style of their digit, some written in another order), as pen features: an
    epoch's inputs."""
    out = np.empty((len(data), pen.POINTS, pen.FEATURES), np.float32)
    for i, (strokes, label) in enumerate(zip(data.strokes, data.y, strict=True)):
        drawn = list(strokes)
        styles = allographs.styles_of(label)
        try:
            if styles and rng.random() < style_share:
                drawn = styles[int(rng.integers(len(styles)))].make(drawn, rng)
            drawn, _ = stroke_space.vary(drawn, rng)
            drawn = rewritten(drawn, rng)
        except (ValueError, IndexError, FloatingPointError):
            drawn = list(strokes)  # strokes too odd to vary: as drawn
        out[i] = pen.features(drawn)
    return out


VARIED_COPIES = 2  # varied copies of each validation drawing the combination is fitted on


def as_drawn_and_varied(data: PenSet, rng: np.random.Generator) -> PenSet:
    """Validation drawings as drawn and ``VARIED_COPIES`` times varied (sizes,
    slants, devices, other styles of their digit, other stroke orders): our
    validation writers are friendlier than the world, and a combination fitted on
    them alone trusts whichever view knows them best."""
    out = PenSet()
    for strokes, label, group in zip(data.strokes, data.y, data.group, strict=True):
        out.add(strokes, label, group=group)
        styles = allographs.styles_of(label)
        for _ in range(VARIED_COPIES):
            drawn = list(strokes)
            try:
                if styles and rng.random() < 0.25:
                    drawn = styles[int(rng.integers(len(styles)))].make(drawn, rng)
                drawn = rewritten(stroke_space.vary(drawn, rng)[0], rng)
            except (ValueError, IndexError, FloatingPointError):
                continue
            out.add(drawn, label, group=group)
    return out


def at_most(part: PenSet, limit: int | None, rng: np.random.Generator) -> PenSet:
    """At most ``limit`` of ``part``'s drawings, in their order (smoke runs and tests)."""
    if limit is None or len(part) <= limit:
        return part
    return part.subset(sorted(rng.choice(len(part), limit, replace=False)))


def limited(data: PenData, limit: int | None, rng: np.random.Generator) -> PenData:
    """At most ``limit`` drawings per part."""
    if limit is None:
        return data
    return PenData(
        at_most(data.train, limit, rng),
        at_most(data.val, limit, rng),
        {k: at_most(v, limit, rng) for k, v in data.tests.items()},
    )
