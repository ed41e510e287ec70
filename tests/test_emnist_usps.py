"""EMNIST Digits and USPS as training sources, read from files generated here in
their exact formats (the real ones are how the product is judged: never read in
tests, never downloaded)."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from collector.formats import DatasetError, emnist, idx, usps
from training import sources
from training.config import TrainConfig


def seven_upright() -> np.ndarray:
    image = np.zeros((28, 28), np.uint8)
    image[6, 8:20] = 255  # the bar
    for row in range(7, 22):
        image[row, 19 - (row - 7) // 2] = 255  # the stem, leaning left
    return image


def write_emnist(directory, part: str, images: np.ndarray, labels: np.ndarray) -> None:
    """As EMNIST ships them: transposed images, gzipped IDX."""
    names = emnist.FILES[part]
    (directory / names[0]).write_bytes(gzip.compress(idx.to_bytes(images.transpose(0, 2, 1))))
    (directory / names[1]).write_bytes(gzip.compress(idx.to_bytes(labels)))


@pytest.fixture
def emnist_dir(tmp_path, settings, monkeypatch):
    monkeypatch.setattr(emnist, "COUNTS", {"train": 20, "test": 10})
    settings.DIGITS_EMNIST_DIR = tmp_path
    upright = np.stack([seven_upright()] * 30)
    labels = np.array([7] * 30, np.uint8)
    write_emnist(tmp_path, "train", upright[:20], labels[:20])
    write_emnist(tmp_path, "test", upright[20:], labels[20:])
    return tmp_path


def test_emnist_is_turned_upright(emnist_dir):
    images, labels = emnist.read(emnist_dir, "train")
    assert images.shape == (20, 28, 28) and (labels == 7).all()
    np.testing.assert_array_equal(images[0], seven_upright())


def test_damaged_or_wrong_emnist_files_are_refused(emnist_dir):
    images_file = emnist_dir / emnist.FILES["train"][0]
    good = images_file.read_bytes()
    images_file.write_bytes(good[:-40])
    with pytest.raises(DatasetError, match=r"not a readable gzip|IDX body"):
        emnist.read(emnist_dir, "train")
    images_file.write_bytes(good)
    with pytest.raises(DatasetError, match="expected 25 of each"):
        emnist.read(emnist_dir, "train", expected=25)
    labels_file = emnist_dir / emnist.FILES["test"][1]
    labels_file.write_bytes(gzip.compress(idx.to_bytes(np.full(10, 12, np.uint8))))
    with pytest.raises(DatasetError, match="not the digits split"):
        emnist.read(emnist_dir, "test")
    labels_file.unlink()
    with pytest.raises(DatasetError, match="EMNIST file missing"):
        emnist.read(emnist_dir, "test")


def usps_rows(count: int, label: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """A vertical stroke on paper, USPS's [-1, 1] scale (-1 = paper)."""
    pixels = np.full((count, 16, 16), -1.0)
    pixels[:, 2:14, 7:9] = 1.0
    return pixels.reshape(count, 256), np.full(count, label)


def write_usps_text(path, pixels, labels, compress=False) -> None:
    lines = [
        " ".join([f"{label:.4f}", *(f"{v:.3f}" for v in row)])
        for label, row in zip(labels, pixels, strict=True)
    ]
    text = "\n".join(lines) + "\n"
    path.write_bytes(gzip.compress(text.encode()) if compress else text.encode())


@pytest.fixture
def usps_counts(monkeypatch):
    monkeypatch.setattr(usps, "COUNTS", {"train": 12, "test": 4})


def test_usps_text_files_plain_or_gzipped(tmp_path, usps_counts):
    pixels, labels = usps_rows(12)
    write_usps_text(tmp_path / "zip.train.gz", pixels, labels, compress=True)
    write_usps_text(tmp_path / "zip.test", *usps_rows(4))
    inks, read_labels = usps.read(tmp_path, "train")
    assert inks.shape == (12, 16, 16) and (read_labels == 1).all()
    assert inks[0, 0, 0] == 0 and inks[0, 5, 7] == 255  # paper is no ink, the stroke full ink
    assert usps.read(tmp_path, "test")[0].shape == (4, 16, 16)


def test_usps_h5(tmp_path, usps_counts):
    import h5py

    with h5py.File(tmp_path / "usps.h5", "w") as handle:
        for part, count in (("train", 12), ("test", 4)):
            pixels, labels = usps_rows(count, 4)
            group = handle.create_group(part)
            group["data"] = (pixels + 1) / 2  # this distribution: [0, 1], 0 = paper
            group["target"] = labels
    inks, labels = usps.read(tmp_path, "train")
    assert inks.shape == (12, 16, 16) and (labels == 4).all() and inks[0, 5, 7] == 255


@pytest.mark.parametrize(
    ("damage", "fragment"),
    [
        (lambda rows: rows[:-1], "11 digits, expected 12"),
        (lambda rows: [rows[0][:100], *rows[1:]], "a label and 256 pixels"),
        (lambda rows: [["3.0", *["2.5"] * 256], *rows[1:]], r"\[-1, 1\]"),
        (lambda rows: [["11.0", *rows[0][1:]], *rows[1:]], "digits 0-9"),
        (lambda rows: [["x", *rows[0][1:]], *rows[1:]], "must be a number"),
    ],
    ids=["count", "short-line", "range", "label", "text"],
)
def test_damaged_usps_files_are_refused(tmp_path, usps_counts, damage, fragment):
    pixels, labels = usps_rows(12)
    rows = [
        [f"{label:.4f}", *(f"{v:.3f}" for v in row)]
        for label, row in zip(labels, pixels, strict=True)
    ]
    (tmp_path / "zip.train").write_text("\n".join(" ".join(r) for r in damage(rows)) + "\n")
    with pytest.raises(DatasetError, match=fragment):
        usps.read(tmp_path, "train")


def test_both_are_training_sources_with_their_own_test_sets(
    emnist_dir, tmp_path, settings, usps_counts, db
):
    usps_dir = tmp_path / "usps"
    usps_dir.mkdir()
    write_usps_text(usps_dir / "zip.train", *usps_rows(12))
    write_usps_text(usps_dir / "zip.test", *usps_rows(4))
    settings.DIGITS_USPS_DIR = usps_dir
    config = TrainConfig(sources=("emnist", "usps"), augment=False)
    data = sources.load_training_data(config)
    from training.sources import ujipen

    judges = {"ujipen"} if ujipen.ujipen_path().exists() else set()  # every run's judges
    assert set(data.tests) == {"emnist-test", "usps-test"} | judges
    assert len(data.tests["emnist-test"]) == 10 and len(data.tests["usps-test"]) == 4
    assert len(data.train) + len(data.val) == 20 + 12
    # USPS's 16×16 scans come out as MNIST-style model inputs: centred in 28×28
    usps_test = data.tests["usps-test"].x[0]
    rows = np.flatnonzero(usps_test.max(axis=1) > 40)
    assert usps_test.shape == (28, 28) and rows[0] >= 3 and rows[-1] <= 24
    assert data.manifest["usps"] == {"train": 12, "test": 4}
    assert TrainConfig.from_run_fields(use_emnist=True, use_usps=True).sources[-2:] == (
        "emnist",
        "usps",
    )
