"""MNIST from its four gzipped IDX files, checksums verified."""

from __future__ import annotations

import gzip
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from django.conf import settings

from collector.formats import DatasetError, idx
from training import recipes
from training.config import TrainConfig
from training.sources.base import Images, Part, Report, take, verified

logger = logging.getLogger(__name__)

MNIST_FILES = {
    "train_images": (
        "train-images-idx3-ubyte.gz",
        "d2cebd02927d553943b2679536bf602ec0cdcb6555ad87dda5d640e1d425faaf",
    ),
    "train_labels": (
        "train-labels-idx1-ubyte.gz",
        "2a107763ddf1eef92815bfbb1b855b662a7228add9dfab29de697c644d666cda",
    ),
    "test_images": (
        "t10k-images-idx3-ubyte.gz",
        "4e612d6003de73386763f2c35c044ab376e830da80adb2347651a1f182f103a1",
    ),
    "test_labels": (
        "t10k-labels-idx1-ubyte.gz",
        "909a5aeb9fcec3f171b427c45622a55f69dc15dd80bd0624413cbfbe12553c1c",
    ),
}


@dataclass
class Mnist:
    train: Images
    test: Images


def mnist_dir() -> Path | None:
    configured = getattr(settings, "DIGITS_MNIST_DIR", None)
    return Path(configured) if configured else None


def load_mnist(directory: Path | None = None) -> Mnist:
    """MNIST from its four gzipped IDX files, checksums verified.

    Without a configured directory holding the files, fall back to Keras'
    downloader (for users with internet); tests and CI always use the files.
    """
    directory = directory or mnist_dir()
    if directory is not None and all((directory / n).exists() for n, _ in MNIST_FILES.values()):
        arrays = {
            key: idx.parse(gzip.decompress(verified(directory / name, digest).read_bytes()))
            for key, (name, digest) in MNIST_FILES.items()
        }
        return Mnist(
            train=Images(arrays["train_images"], arrays["train_labels"]),
            test=Images(arrays["test_images"], arrays["test_labels"]),
        )
    if directory is not None:
        needed = ", ".join(name for name, _ in MNIST_FILES.values())
        raise DatasetError(f"MNIST files are missing in {directory} (need {needed}).")
    logger.warning("DIGITS_MNIST_DIR is not set: downloading MNIST with Keras.")
    from keras.datasets import mnist  # only reached by users with internet

    (x_train, y_train), (x_test, y_test) = mnist.load_data()
    return Mnist(train=Images(x_train, y_train), test=Images(x_test, y_test))


def part(config: TrainConfig, rng: np.random.Generator, report: Report) -> Part:
    """MNIST's training file less the recipe's validation hold-out (5,000 ours, 6,000
    the prior work's 90/10), and its test file as ``mnist-test``."""
    report("reading MNIST", 0, 0)
    mnist = load_mnist()
    order = rng.permutation(len(mnist.train))
    held = recipes.recipe(config.recipe).mnist_val
    val_index, train_index = order[:held], order[held:]
    return Part(
        train=[take(mnist.train.subset(train_index), config.limit, rng)],
        val=[take(mnist.train.subset(val_index), config.limit, rng)],
        tests={"mnist-test": take(mnist.test, config.limit, rng)},
        manifest=dict(MNIST_FILES.values()),
    )
