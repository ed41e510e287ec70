"""USPS from ``DIGITS_USPS_DIR``: 16×16 scans made 28×28 model inputs by
``classifier.preprocessing``, like every other picture."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from django.conf import settings

from classifier import preprocessing
from collector.formats import usps as usps_format
from training.config import TrainConfig
from training.sources.base import Images, Part, Report, as_bytes
from training.sources.emnist import split_part


def load_usps() -> tuple[Images, Images]:
    """``(train, test)``."""
    directory = Path(settings.DIGITS_USPS_DIR)
    parts = []
    for name in ("train", "test"):
        inks, labels = usps_format.read(directory, name)
        x = np.stack([as_bytes(preprocessing.ink_to_model_input(ink)) for ink in inks])
        parts.append(Images(x, labels))
    return parts[0], parts[1]


def part(config: TrainConfig, rng: np.random.Generator, report: Report) -> Part:
    report("reading USPS", 0, 0)
    whole, test = load_usps()
    return split_part("usps", whole, test, config, rng)
