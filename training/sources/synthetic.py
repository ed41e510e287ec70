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
from training.sources.base import Images, Part, Report, as_bytes, take
from training.sources.cache import cached
from training.sources.pendigits import PENDIGITS_SHA256, held_out_digits
from training.sources.variants import SYNTHESIS_VERSION, synthesis_key


def style_test_sets() -> dict[str, Images]:
    """The held-out writers' digits of each style's digit, written in that style,
    drawn as the page draws them."""

    def build() -> dict[str, np.ndarray]:
        digits = held_out_digits()
        arrays = {}
        for index, style in enumerate(allographs.ALL_STYLES.values()):
            rng = np.random.default_rng([20261122, index])
            xs = [
                pen.render(style.make(canvas.fit_to_canvas(d.strokes), rng))
                for d in digits
                if d.label == style.digit
            ]
            arrays[style.name] = np.stack(xs)
        return arrays

    key = (*synthesis_key(PENDIGITS_SHA256), sorted(allographs.ALL_STYLES))
    arrays = cached("styles", key, build)
    return {
        f"{'probe' if name in allographs.PROBES else 'style'}:{name}": Images(
            x, np.full(len(x), allographs.ALL_STYLES[name].digit, np.uint8)
        )
        for name, x in arrays.items()
    }


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


def part(config: TrainConfig, rng: np.random.Generator, report: Report) -> Part:
    """With the pen digits: their held-out writers' scans and styles as test sets."""
    report("rendering the held-out writers' test sets", 0, 0)
    tests = {"pendigits-scans": take(scan_test_set(), config.limit, rng)}
    for name, images in style_test_sets().items():
        tests[name] = take(images, config.limit, rng)
    manifest = {
        "synthesis_version": SYNTHESIS_VERSION,
        "styles": sorted(allographs.STYLES),
        "probes": sorted(allographs.PROBES),
    }
    return Part(tests=tests, manifest=manifest)
