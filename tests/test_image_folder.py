"""A folder of images (one sub-folder per digit) as a training source."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from collector.formats import DatasetError, image_folder
from training import sources
from training.config import ConfigError, TrainConfig
from training.sources import image_folder as folder_source


@pytest.fixture
def folder(tmp_path, settings, canvas_png):
    """DATASETS/scans/<digit>/…: canvas PNGs, a JPEG photo-like copy, and two that
    cannot be used (damaged, blank)."""
    settings.DIGITS_DATASETS_DIR = tmp_path
    root = tmp_path / "scans"
    for digit in range(10):
        (root / str(digit)).mkdir(parents=True)
        for index in range(3):
            (root / str(digit) / f"{index}.png").write_bytes(canvas_png(digit, index))
    rgba = Image.open(io.BytesIO(canvas_png(4, 5)))
    paper = Image.new("RGB", rgba.size, (235, 230, 220))
    paper.paste((30, 30, 40), mask=rgba.getchannel("A"))
    paper.save(root / "4" / "photo.JPG", "JPEG", quality=85)
    (root / "7" / "damaged.png").write_bytes(canvas_png(7)[:200])
    Image.new("L", (64, 64), 255).save(root / "2" / "blank.png")
    (root / "2" / "notes.txt").write_text("not an image")
    return root


def test_the_walk_is_sorted_and_strict(folder, tmp_path):
    found = list(image_folder.files(folder))
    assert [label for _, label in found] == sorted(label for _, label in found)
    assert {p.suffix.lower() for p, _ in found} == {".png", ".jpg"}
    assert image_folder.digit("7") == 7 and image_folder.digit("seven") is None
    with pytest.raises(DatasetError, match="is not a folder"):
        list(image_folder.files(tmp_path / "nowhere"))


def test_images_are_preprocessed_and_bad_ones_reported(folder, canvas_png):
    (folder / "seven").mkdir()
    (folder / "seven" / "a.png").write_bytes(canvas_png(7))  # a typo is named, not used
    skipped = []
    images = folder_source.load_image_folder("scans", skipped)
    assert len(images) == 31 and images.x.shape == (31, 28, 28)
    assert sorted(name for name, _ in skipped) == ["2/blank.png", "7/damaged.png", "seven/a.png"]
    assert (images.y == 4).sum() == 4  # the JPEG photo is read like an upload


def test_the_source_trains_with_a_tenth_held_out(folder, db):
    config = TrainConfig(sources=("folder",), image_folder="scans", augment=False)
    data = sources.load_training_data(config)
    assert len(data.train) + len(data.val) == 31 and len(data.val) == 3
    assert data.manifest["folder"]["images"] == 31
    assert len(data.manifest["folder"]["skipped"]) == 2


def test_a_folder_source_is_checked_when_configured(folder, tmp_path):
    with pytest.raises(ConfigError, match="needs the path of its folder"):
        TrainConfig(sources=("folder",))
    with pytest.raises(ConfigError, match="Only files under the datasets folder"):
        TrainConfig(sources=("folder",), image_folder="/etc")
    with pytest.raises(ConfigError, match="is not a folder"):
        TrainConfig(sources=("folder",), image_folder="scans/0/0.png")
    with pytest.raises(ConfigError, match="image_folder"):  # a name no file system takes
        TrainConfig(sources=("folder",), image_folder="0" * 5000)
    with pytest.raises(ConfigError, match="kaggle_csv"):
        TrainConfig(sources=("kaggle",), kaggle_csv="0" * 5000)
    assert TrainConfig.from_run_fields(image_folder="scans").sources[-1] == "folder"


def test_a_folder_with_nothing_readable_is_refused(tmp_path, settings):
    settings.DIGITS_DATASETS_DIR = tmp_path
    (tmp_path / "empty" / "3").mkdir(parents=True)
    with pytest.raises(DatasetError, match="holds no image"):
        folder_source.load_image_folder("empty")
