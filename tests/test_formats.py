"""collector.formats: each file format reads what it writes, and refuses what it is not."""

from __future__ import annotations

import gzip
import io

import numpy as np
import pytest

from collector.formats import DatasetError, idx, kaggle_csv, unipen


def test_parse_idx_checks_the_header_against_the_body():
    header = bytes([0, 0, 8, 3]) + (2).to_bytes(4, "big") + (2).to_bytes(4, "big") * 2
    assert idx.parse(header + bytes(range(8))).shape == (2, 2, 2)
    with pytest.raises(DatasetError):
        idx.parse(header + bytes(7))
    with pytest.raises(DatasetError):
        idx.parse(b"\x1f\x8b" + header)  # still gzipped


def test_idx_round_trip():
    images = np.random.default_rng(0).integers(0, 256, (5, 28, 28), dtype=np.uint8)
    np.testing.assert_array_equal(idx.parse(idx.to_bytes(images)), images)
    labels = np.arange(5, dtype=np.uint8)
    np.testing.assert_array_equal(idx.parse(idx.to_bytes(labels)), labels)


def test_parse_unipen_handles_multi_stroke_digits():
    text = """.SEGMENT DIGIT 0 ? "4"
.COMMENT 4 7 1
.PEN_DOWN
 10 10
 10 50
.PEN_UP
.DT 100
.PEN_DOWN
 0 30
 20 30
.PEN_UP
.SEGMENT DIGIT 6-7 ? "1"
.COMMENT 1 7 2
.PEN_DOWN
 5 0
 5 90
.PEN_UP
"""
    four, one = unipen.parse(text)
    assert (four.label, four.writer, four.sample, len(four.strokes)) == (4, 7, 1, 2)
    assert one.label == 1 and one.strokes[0].tolist() == [[5, 0], [5, 90]]


def test_unipen_round_trip_through_a_gzipped_file(tmp_path):
    digits = [
        unipen.PenDigit(7, writer=41, sample=3, strokes=[np.array([[0, 500], [300, 500], [120, 0]])]),
        unipen.PenDigit(4, writer=42, sample=1, strokes=[np.array([[200, 500], [0, 150], [300, 150]]),
                                                         np.array([[220, 400], [220, 0]])]),
    ]  # fmt: skip
    path = tmp_path / "two.tra.gz"
    path.write_bytes(gzip.compress(unipen.to_text(digits).encode("ascii")))
    back = unipen.read(path)
    assert [(d.label, d.writer, d.sample, len(d.strokes)) for d in back] == [
        (7, 41, 3, 1),
        (4, 42, 1, 2),
    ]
    for original, parsed in zip(digits, back, strict=True):
        for a, b in zip(original.strokes, parsed.strokes, strict=True):
            np.testing.assert_array_equal(a, b)


def test_a_file_that_is_not_unipen_is_refused(tmp_path):
    path = tmp_path / "photo.gz"
    path.write_bytes(gzip.compress(bytes(range(256))))
    with pytest.raises(DatasetError, match="not a UNIPEN"):
        unipen.read(path)
    with pytest.raises(DatasetError, match="not found"):
        unipen.read(tmp_path / "missing.gz")


def test_kaggle_csv_round_trip(tmp_path):
    images = np.random.default_rng(1).integers(0, 256, (3, 28, 28), dtype=np.uint8)
    labels = np.array([3, 1, 4], dtype=np.uint8)
    text = io.StringIO()
    kaggle_csv.write(text, images, labels)
    path = tmp_path / "train.csv"
    path.write_text(text.getvalue(), encoding="ascii")
    x, y = kaggle_csv.read(path)
    np.testing.assert_array_equal(x, images)
    np.testing.assert_array_equal(y, labels)


def test_a_kaggle_csv_with_bad_values_is_refused(tmp_path):
    path = tmp_path / "train.csv"
    path.write_text(",".join(kaggle_csv.HEADER) + "\n" + "11," + ",".join(["0"] * 784) + "\n")
    with pytest.raises(DatasetError, match="labels 0-9"):
        kaggle_csv.read(path)


def test_the_dataset_archive_streams_its_manifest_and_strokes(tmp_path, monkeypatch):
    """Written and read one drawing at a time (the manifest and strokes spooled, the
    strokes read alongside the manifest): drawings with and without strokes, in any
    mix, come back as they went in."""
    from collector.formats import digits_zip

    monkeypatch.setattr(digits_zip, "COPY_CHARS", 7)  # many small copies
    entries = [
        digits_zip.Entry(
            png=bytes([i]) * 20, sha256=f"{i:064x}", label=i % 10, split="train",
            status="approved", source="canvas", writer=f"w{i}", created="2026-12-06",
            strokes=[[[i, 2.5, 0]]] if i % 3 else None,
        )
        for i in range(40)
    ]  # fmt: skip
    path = tmp_path / "archive.zip"
    with open(path, "wb") as out:
        assert digits_zip.write(out, iter(entries)) == 40
    back = list(digits_zip.read(path))
    assert [(e.sha256, e.png, str(e.label), e.writer, e.strokes) for e in back] == [
        (e.sha256, e.png, str(e.label), e.writer, e.strokes) for e in entries
    ]
