"""The Kaggle digit-recognizer training CSV (``label,pixel0,…,pixel783``), only
from the datasets folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from collector.formats import DatasetError, kaggle_csv
from training.config import TrainConfig, dataset_file
from training.sources.base import Images, Part, Report, hold_out, sha256_of, take


def load_kaggle_csv(path: Path | str) -> Images:
    """The CSV's images, refused unless it lies in the datasets folder
    (``config.dataset_file``)."""
    try:
        path = dataset_file(path)
    except ValueError as exc:
        raise DatasetError(str(exc)) from None
    return Images(*kaggle_csv.read(path))


def part(config: TrainConfig, rng: np.random.Generator, report: Report) -> Part:
    """The CSV less its validation hold-out (it has no test labels)."""
    train, val = hold_out(load_kaggle_csv(config.kaggle_csv), rng)
    return Part(
        train=[take(train, config.limit, rng)],
        val=[val],
        manifest={config.kaggle_csv: sha256_of(dataset_file(config.kaggle_csv))},
    )
