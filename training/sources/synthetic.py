"""Test sets made from the held-out pen writers: their digits written in each
synthetic style, and as scanned or photographed paper (uploads).

The writers are held out, so these measure styles and scans on people no model
trained on; ``style:*`` sets are styles training also synthesises,
``probe:*`` ones kept out of training on purpose.
"""

from __future__ import annotations

import numpy as np

from classifier import canvas, preprocessing
from training import allographs
from training import strokes as pen
from training.config import TrainConfig
from training.pen_data import PenSet, junk_strokes
from training.sources.base import Images, Part, Pool, Report, as_bytes, take
from training.sources.cache import cached
from training.sources.pendigits import PENDIGITS_SHA256, held_out_digits, pendigits_train_digits
from training.sources.variants import SYNTHESIS_VERSION, synthesis_key


def style_test_strokes() -> dict[str, PenSet]:
    """The held-out writers' digits of each style's digit, written in that style:
    ``style:*`` from the ranges training draws from, ``disjoint:*`` from each
    family's held-out bands (shapes training never drew), ``probe:*`` the styles
    kept out of training. The strokes themselves, as the page would send them
    (the pen view is scored on them); the same seeds every time."""
    digits = held_out_digits()
    sets: dict[str, PenSet] = {}
    for index, style in enumerate(allographs.ALL_STYLES.values()):
        for held_out in (False, True) if style.disjoint else (False,):
            rng = np.random.default_rng([20261122, index, held_out])
            drawn = PenSet()
            for d in digits:
                if d.label == style.digit:
                    options = {"held_out": True} if held_out else {}
                    drawn.add(style.make(canvas.fit_to_canvas(d.strokes), rng, **options), d.label)
            sets[f"{'disjoint' if held_out else _kind(style.name)}:{style.name}"] = drawn
    return sets


def style_test_sets() -> dict[str, Images]:
    """:func:`style_test_strokes` drawn as the page draws them: the picture's
    style test sets (cached: every run scores them)."""

    def build() -> dict[str, np.ndarray]:
        return {
            name: np.stack([pen.render(strokes) for strokes in drawn.strokes])
            for name, drawn in style_test_strokes().items()
        }

    key = (*synthesis_key(PENDIGITS_SHA256), sorted(allographs.ALL_STYLES), "families")
    arrays = cached("styles", key, build)
    return {
        name: Images(x, np.full(len(x), allographs.ALL_STYLES[name.split(":")[1]].digit, np.uint8))
        for name, x in arrays.items()
    }


def _kind(name: str) -> str:
    return "probe" if name in allographs.PROBES else "style"


def scan_test_set() -> Images:
    """Held-out writers' digits as scanned or photographed paper digits (uploads)."""

    def build() -> dict[str, np.ndarray]:
        digits = held_out_digits()
        rng = np.random.default_rng(20261123)
        xs = []
        for d in digits:
            ink = canvas.render_ink(canvas.fit_to_canvas(d.strokes))
            xs.append(as_bytes(preprocessing.to_model_input(pen.scan_like(ink, rng))))
        return {"x": np.stack(xs), "y": np.asarray([d.label for d in digits], np.uint8)}

    arrays = cached("scans", synthesis_key(PENDIGITS_SHA256), build)
    return Images(arrays["x"], arrays["y"])


# A pool label for ink that is no digit: trained towards every digit equally
# (``training.stream``), so that "sure" is never the answer to it.
NO_DIGIT = 10
JUNK_IMAGES = 4000
JUNK_SHARE = 0.03  # of every batch


def junk_pool() -> Pool:
    """Ink that is no digit (dashes and slashes, scribbles, scattered marks, the
    first strokes of a digit: ``training.pen_data.junk_strokes``, what the pen
    view learns from too), drawn as the page draws it and preprocessed like a live
    drawing; what the server refuses as blank or too small is left out."""

    def build() -> dict[str, np.ndarray]:
        rng = np.random.default_rng(20261205)
        digits = PenSet()
        for strokes, label in pendigits_train_digits():
            digits.add(strokes, label)
        xs = []
        while len(xs) < JUNK_IMAGES:
            try:
                xs.append(pen.render(junk_strokes(rng, digits)))
            except preprocessing.PreprocessingError:
                continue
        return {"x": np.stack(xs)[:, None]}

    x = cached("junk", (*synthesis_key(PENDIGITS_SHA256), JUNK_IMAGES), build)["x"]
    return Pool("no-digit", x, np.full(len(x), NO_DIGIT, np.uint8), np.ones(len(x)),
                draws=0, share=JUNK_SHARE)  # fmt: skip


def part(config: TrainConfig, rng: np.random.Generator, report: Report) -> Part:
    """With the pen digits: their held-out writers' scans and styles as test sets,
    and, when training draws from variant pools, ink that is no digit."""
    report("rendering the held-out writers' test sets", 0, 0)
    tests = {"pendigits-scans": take(scan_test_set(), config.limit, rng)}
    for name, images in style_test_sets().items():
        tests[name] = take(images, config.limit, rng)
    manifest = {
        "synthesis_version": SYNTHESIS_VERSION,
        "styles": sorted(allographs.STYLES),
        "probes": sorted(allographs.PROBES),
    }
    pools = []
    if config.augment and config.variants > 1:
        report("drawing ink that is no digit (first run only)", 0, 0)
        pools.append(junk_pool())
        manifest["no_digit"] = {"images": JUNK_IMAGES, "share": JUNK_SHARE}
    return Part(tests=tests, manifest=manifest, pools=pools)
