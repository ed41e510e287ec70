"""The UCI pen digits: 7,494 digits by 30 writers, as strokes, split by writer.

Three roles: the training writers' strokes become a pool of stroke-space
variants (or, without augmentation, renderings at several sizes); the
validation writers' renderings validate; the held-out writers' renderings are
the ``pendigits`` test set (and, in ``training.sources.synthetic``, the style
and scan test sets). Strokes are drawn by ``classifier.canvas`` and go through
``classifier.preprocessing`` exactly like a live drawing.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from django.conf import settings

from classifier import canvas, preprocessing
from classifier.canvas import DEFAULT_RENDER_SIZE
from collector.formats import DatasetError, unipen
from training import strokes as pen
from training.config import TrainConfig
from training.sources.base import Images, Part, Pool, Report, quiet, take, verified
from training.sources.cache import cached
from training.sources.variants import in_parallel, stroke_pool, synthesis_key

PENDIGITS_FILE = "pendigits-orig.tra.gz"
PENDIGITS_SHA256 = "ef094c671b93afb431dfc9f9ff3c49f80b3257497fead8eea26877e88d25a31f"

# Writers never trained on by our models: the honest "people the model never
# saw" measurement, and the digits the browser test replays. Split by writer,
# never by drawing, or a writer's style leaks from train into test.
PENDIGITS_TEST_WRITERS = frozenset({3, 8, 13, 18, 23, 28})
PENDIGITS_VAL_WRITERS = frozenset({5, 15, 25})

# How big people draw on the 256 px canvas: the digit's longer side in px.
# Validation renders each digit at several sizes, because the stroke is a fixed
# 16 px whatever the size, so size changes the relative stroke weight.
RENDER_SIZES = (96, 150, 200)
# Each pen digit is drawn this many times per epoch (one variant each time).
PEN_DRAWS_PER_EPOCH = 3


def pendigits_path() -> Path:
    return Path(settings.DIGITS_PENDIGITS_DIR) / PENDIGITS_FILE


def load_pendigit_strokes(path: Path | None = None) -> list[unipen.PenDigit]:
    """The shared UNIPEN file's digits, its checksum verified (the writer split
    above is defined for exactly this file)."""
    path = path or pendigits_path()
    if not path.exists():
        raise DatasetError(f"Pen-digits file not found: {path}")
    return unipen.read(verified(path, PENDIGITS_SHA256))


def held_out_digits() -> list[unipen.PenDigit]:
    """The held-out writers' digits, as strokes (tablet units, y up)."""
    return [d for d in load_pendigit_strokes() if d.writer in PENDIGITS_TEST_WRITERS]


@dataclass
class PenDigitArrays:
    x: np.ndarray  # (n, 28, 28) uint8, after the serving preprocessing
    y: np.ndarray
    writer: np.ndarray
    size: np.ndarray  # the render size used

    def select(self, mask: np.ndarray) -> PenDigitArrays:
        return PenDigitArrays(self.x[mask], self.y[mask], self.writer[mask], self.size[mask])

    def images(self) -> Images:
        return Images(self.x, self.y)


def load_pendigits(
    sizes: tuple[int, ...] = RENDER_SIZES,
    *,
    path: Path | None = None,
    normalise_stroke: bool = True,
    cache: bool = True,
) -> PenDigitArrays:
    """Render every pen digit at each size and preprocess it like a live drawing.

    Rendering 10,992 digits at three sizes takes over a minute on one core (in
    worker processes where it may), so the result is cached
    (``training.sources.cache``), keyed by the file's checksum and the
    preprocessing parameters.
    """

    def build() -> dict[str, np.ndarray]:
        digits = load_pendigit_strokes(path)
        jobs = [(digit.strokes, sizes, normalise_stroke) for digit in digits]
        x = in_parallel(pen.renders_job, jobs, step="rendering pen digits (first run only)")
        repeat = len(sizes)
        return {
            "x": x.reshape(-1, 28, 28),
            "y": np.repeat(np.asarray([d.label for d in digits], np.uint8), repeat),
            "writer": np.repeat(np.asarray([d.writer for d in digits], np.int16), repeat),
            "size": np.tile(np.asarray(sizes, np.int16), len(digits)),
        }

    key = (
        PENDIGITS_SHA256,
        preprocessing.PREPROCESSING_VERSION,
        sizes,
        normalise_stroke,
        preprocessing.CANVAS_STROKE_WIDTH,
        preprocessing.TARGET_STROKE_20,
        preprocessing.TARGET_CENTRE,
        preprocessing.INK_THRESHOLD,
    )
    arrays = cached("pendigits", key, build, enabled=cache)
    return PenDigitArrays(arrays["x"], arrays["y"], arrays["writer"], arrays["size"])


def pendigits_by_role(arrays: PenDigitArrays) -> dict[str, PenDigitArrays]:
    """Split by writer: train / val / test writers never share a person."""
    test = np.isin(arrays.writer, list(PENDIGITS_TEST_WRITERS))
    val = np.isin(arrays.writer, list(PENDIGITS_VAL_WRITERS))
    return {
        "train": arrays.select(~test & ~val),
        "val": arrays.select(val),
        "test": arrays.select(test),
    }


def pendigits_test_split() -> Images:
    """The held-out writers' digits, one rendering each at the size people typically
    draw: the "pendigits" test set every model is judged on."""
    return pendigits_by_role(load_pendigits(sizes=(DEFAULT_RENDER_SIZE,)))["test"].images()


def pendigits_train_digits() -> list[tuple[list[np.ndarray], int]]:
    """The training writers' pen digits as canvas strokes (the page's coordinates)."""
    held_out = PENDIGITS_TEST_WRITERS | PENDIGITS_VAL_WRITERS
    return [
        (canvas.fit_to_canvas(d.strokes), d.label)
        for d in load_pendigit_strokes()
        if d.writer not in held_out
    ]


def pen_pool(
    digits: list[tuple[list[np.ndarray], int]], config: TrainConfig, report: Report = quiet
) -> Pool:
    """Stroke-space variants of the training writers' pen digits (cached on disk)."""
    which = np.concatenate([np.concatenate(s).ravel() for s, _ in digits]).tobytes()
    return stroke_pool(
        "pendigits", digits, config, synthesis_key(PENDIGITS_SHA256),
        cache_name="penpool", step="rendering pen-digit variants (first run only)",
        draws_per_digit=PEN_DRAWS_PER_EPOCH, key_extra=(hashlib.sha256(which).hexdigest(),),
        report=report,
    )  # fmt: skip


def part(config: TrainConfig, rng: np.random.Generator, report: Report) -> Part:
    """The training writers (as a variant pool, or renderings without augmentation),
    the validation writers, and the held-out writers as the ``pendigits`` test set
    (``training.sources.synthetic`` adds their scans and styles)."""
    report("reading pen digits", 0, 0)
    roles = pendigits_by_role(load_pendigits())
    writers = pendigits_train_digits()
    if config.limit is not None and len(writers) > config.limit:
        writers = [writers[i] for i in sorted(rng.choice(len(writers), config.limit, False))]
    found = Part()
    if config.augment and config.variants > 1:
        found.pools.append(pen_pool(writers, config, report))
    else:
        found.train.append(take(roles["train"].images(), config.limit, rng))
    found.val.append(take(roles["val"].images(), config.limit, rng))
    found.tests["pendigits"] = take(pendigits_test_split(), config.limit, rng)
    found.manifest = {
        PENDIGITS_FILE: PENDIGITS_SHA256,
        "test_writers": sorted(PENDIGITS_TEST_WRITERS),
        "val_writers": sorted(PENDIGITS_VAL_WRITERS),
        "render_sizes": list(RENDER_SIZES),
        "variants": config.variants if config.augment else 1,
    }
    return found
