"""EMNIST Digits from ``DIGITS_EMNIST_DIR``: made to MNIST's format (28×28, centred
in a 20 px box), so used as MNIST is."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from django.conf import settings

from collector.formats import emnist as emnist_format
from training.config import TrainConfig
from training.sources.base import Images, Part, Report, hold_out, take


def load_emnist() -> tuple[Images, Images]:
    """``(train, test)``, upright."""
    directory = Path(settings.DIGITS_EMNIST_DIR)
    return (
        Images(*emnist_format.read(directory, "train")),
        Images(*emnist_format.read(directory, "test")),
    )


def part(config: TrainConfig, rng: np.random.Generator, report: Report) -> Part:
    report("reading EMNIST", 0, 0)
    whole, test = load_emnist()
    return split_part("emnist", whole, test, config, rng)


def split_part(
    name: str, whole: Images, test: Images, config: TrainConfig, rng: np.random.Generator
) -> Part:
    """A source with a training and a test file: the training file less its
    validation hold-out, and ``<name>-test``."""
    train, val = hold_out(whole, rng)
    val = take(val, config.limit, rng)  # before train's: the draws stay in this order
    return Part(
        train=[take(train, config.limit, rng)],
        val=[val],
        tests={f"{name}-test": take(test, config.limit, rng)},
        manifest={"train": len(whole), "test": len(test)},
    )
