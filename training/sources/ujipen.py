"""UJI Pen Characters v2, its digits: 60 writers in Spain, two of each digit per
writer, as pen strokes. Real continental handwriting (long-flagged 1s, crossed
7s, open 4s) that the pen digits lack.

Split by writer, never by sample: every third writer is held out as the
``ujipen`` test set (our own continental test), the writer after each of them
validates, the rest train (as a pool of stroke-space variants, like the pen
digits).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from django.conf import settings

from classifier import canvas, preprocessing
from classifier.canvas import DEFAULT_RENDER_SIZE
from collector.formats import DatasetError, ujipen
from collector.formats.unipen import PenDigit
from training.config import TrainConfig
from training.sources.base import Images, Part, Pool, Report, as_bytes, quiet, take, verified
from training.sources.cache import cached
from training.sources.variants import stroke_pool, synthesis_key

UJIPEN_FILE = "ujipenchars2.json.gz"
UJIPEN_SHA256 = "28e6505cf08aab4708300a19b0f9fab3225de203fc8a82b0a45bc6c9be98dab5"
WRITERS = 60
UJIPEN_TEST_WRITERS = frozenset(range(0, WRITERS, 3))  # 20 writers: a third
UJIPEN_VAL_WRITERS = frozenset(range(1, WRITERS, 6))  # 10 writers
DRAWS_PER_EPOCH = 3


def ujipen_path() -> Path:
    return Path(settings.DIGITS_UJIPEN_DIR) / UJIPEN_FILE


def load_ujipen_strokes(path: Path | None = None) -> list[PenDigit]:
    """The shared file's digits (screen points, y down), its checksum verified: the
    writer split is defined for exactly this file and its order."""
    path = path or ujipen_path()
    if not path.exists():
        raise DatasetError(f"UJI pen digits file not found: {path}")
    return ujipen.read(verified(path, UJIPEN_SHA256))


def role(writer: int) -> str:
    if writer in UJIPEN_TEST_WRITERS:
        return "test"
    return "val" if writer in UJIPEN_VAL_WRITERS else "train"


def on_canvas(digit: PenDigit) -> list[np.ndarray]:
    """The digit's strokes drawn as people draw on the page (its screen y grows down)."""
    return canvas.fit_to_canvas(digit.strokes, DEFAULT_RENDER_SIZE, y_up=False)


def rendered(role_name: str) -> Images:
    """One writer role's digits, rendered as the page draws them and preprocessed
    like a live drawing (cached)."""

    def build() -> dict[str, np.ndarray]:
        digits = [d for d in load_ujipen_strokes() if role(d.writer) == role_name]
        xs = [
            as_bytes(preprocessing.to_model_input(canvas.render_canvas_png(on_canvas(d))))
            for d in digits
        ]
        return {"x": np.stack(xs), "y": np.asarray([d.label for d in digits], np.uint8)}

    key = (UJIPEN_SHA256, role_name, *synthesis_key(UJIPEN_SHA256)[1:])
    arrays = cached("ujipen", key, build)
    return Images(arrays["x"], arrays["y"])


def ujipen_test_set() -> Images:
    """The held-out continental writers: the ``ujipen`` test set."""
    return rendered("test")


def ujipen_pool(config: TrainConfig, report: Report = quiet) -> Pool:
    """Stroke-space variants of the training writers' digits (cached)."""
    digits = [(on_canvas(d), d.label) for d in load_ujipen_strokes() if role(d.writer) == "train"]
    return stroke_pool(
        "ujipen", digits, config, synthesis_key(UJIPEN_SHA256),
        cache_name="ujipool", step="rendering UJI pen-digit variants (first run only)",
        draws_per_digit=DRAWS_PER_EPOCH, seed_base=100_000, report=report,
    )  # fmt: skip


def part(config: TrainConfig, rng: np.random.Generator, report: Report) -> Part:
    """The training writers (a variant pool, or renderings without augmentation), the
    validation writers, and the held-out writers as the ``ujipen`` test set."""
    report("reading the UJI pen digits", 0, 0)
    found = Part()
    if config.augment and config.variants > 1:
        found.pools.append(ujipen_pool(config, report))
    else:
        found.train.append(take(rendered("train"), config.limit, rng))
    found.val.append(take(rendered("val"), config.limit, rng))
    found.tests["ujipen"] = take(ujipen_test_set(), config.limit, rng)
    found.manifest = {
        UJIPEN_FILE: UJIPEN_SHA256,
        "test_writers": sorted(UJIPEN_TEST_WRITERS),
        "val_writers": sorted(UJIPEN_VAL_WRITERS),
        "variants": config.variants if config.augment else 1,
    }
    return found
