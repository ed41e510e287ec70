"""A folder of images under the datasets folder, one sub-folder per digit (scans,
photos, canvas PNGs), through the same preprocessing as an upload."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from classifier import preprocessing
from collector.formats import DatasetError
from collector.formats import image_folder as folder_format
from training.config import TrainConfig, dataset_folder
from training.sources.base import Images, Part, Report, as_bytes, hold_out, take


def load_image_folder(path: str | Path, skipped: list | None = None) -> Images:
    """Every image under ``path/<digit>/``. Images it refuses (unreadable, blank, too
    small, too large) are left out and listed in ``skipped`` as (file, why)."""
    root = dataset_folder(path)
    xs, ys = [], []
    for file, name in folder_format.files(root):
        label = folder_format.digit(name)
        try:
            if label is None:
                raise preprocessing.PreprocessingError("not in a digit's folder (0 to 9)")
            if file.stat().st_size > preprocessing.MAX_IMAGE_BYTES:
                raise preprocessing.ImageTooLarge("larger than an upload may be")
            x = preprocessing.to_model_input(file.read_bytes())
        except (OSError, preprocessing.PreprocessingError) as exc:
            if skipped is not None:
                skipped.append((str(file.relative_to(root)), str(exc)))
            continue
        xs.append(as_bytes(x))
        ys.append(label)
    if not xs:
        raise DatasetError(f"{path} holds no image that can be read (one sub-folder per digit).")
    return Images(np.stack(xs), np.asarray(ys, np.uint8))


def part(config: TrainConfig, rng: np.random.Generator, report: Report) -> Part:
    """The folder less its validation hold-out."""
    report("reading the image folder", 0, 0)
    skipped: list = []
    folder = load_image_folder(config.image_folder, skipped)
    train, val = hold_out(folder, rng)
    return Part(
        train=[take(train, config.limit, rng)],
        val=[val],
        manifest={"path": config.image_folder, "images": len(folder), "skipped": skipped},
    )
