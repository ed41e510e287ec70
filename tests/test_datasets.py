"""training.datasets: MNIST from IDX files (checksummed) and UNIPEN pen strokes."""

from __future__ import annotations

import gzip
import io
import shutil

import numpy as np
import pytest
from PIL import Image

from classifier import canvas
from collector.formats import idx, unipen
from training import sources


def test_mnist_loads_from_the_configured_directory():
    mnist = sources.load_mnist()
    assert mnist.train.x.shape == (60_000, 28, 28) and mnist.train.x.dtype == np.uint8
    assert mnist.test.x.shape == (10_000, 28, 28)
    assert np.bincount(mnist.test.y, minlength=10).tolist() == [
        980,
        1135,
        1032,
        1010,
        982,
        892,
        958,
        1028,
        974,
        1009,
    ]


def test_a_file_with_a_wrong_checksum_is_refused(tmp_path, settings):
    # given a copy of MNIST where one byte of one file differs
    for name, _ in sources.MNIST_FILES.values():
        shutil.copy(sources.mnist_dir() / name, tmp_path / name)
    target = tmp_path / sources.MNIST_FILES["test_labels"][0]
    data = bytearray(target.read_bytes())
    data[-1] ^= 0xFF
    target.write_bytes(bytes(data))
    # when / then
    with pytest.raises(sources.ChecksumMismatch, match="t10k-labels"):
        sources.load_mnist(tmp_path)


def test_a_configured_directory_without_the_files_does_not_download(tmp_path):
    with pytest.raises(sources.DatasetError, match="missing"):
        sources.load_mnist(tmp_path)


def test_parse_idx_checks_the_header_against_the_body():
    header = bytes([0, 0, 8, 3]) + (2).to_bytes(4, "big") + (2).to_bytes(4, "big") * 2
    assert idx.parse(header + bytes(range(8))).shape == (2, 2, 2)
    with pytest.raises(sources.DatasetError):
        idx.parse(header + bytes(7))
    with pytest.raises(sources.DatasetError):
        idx.parse(b"\x1f\x8b" + header)  # still gzipped


def test_pen_digits_parse_into_30_writers_with_the_documented_class_counts(pen_digits):
    assert len(pen_digits) == 7494
    assert len({d.writer for d in pen_digits}) == 30
    counts = np.bincount([d.label for d in pen_digits], minlength=10).tolist()
    assert counts == [780, 779, 780, 719, 780, 720, 720, 778, 719, 719]
    assert all(len(s) >= 1 and s.shape[1] == 2 for d in pen_digits for s in d.strokes)


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


def test_rendering_matches_the_canvas(pen_digits):
    # the page's canvas: 256×256 RGBA, transparent paper, black ink, alpha = coverage
    image = Image.open(io.BytesIO(canvas.render_strokes(pen_digits[0].strokes)))
    assert image.size == (256, 256) and image.mode == "RGBA"
    rgba = np.asarray(image)
    assert rgba[:, :, :3].max() == 0
    assert rgba[0, 0, 3] == 0 and rgba[:, :, 3].max() == 255
    # anti-aliased edges: partial coverage exists
    assert ((rgba[:, :, 3] > 0) & (rgba[:, :, 3] < 255)).any()
    # y grows upward on the tablet, downward on the canvas: an "8"'s first point
    # (top of the loop on the tablet) lands in the canvas' upper half
    eight = next(d for d in pen_digits if d.label == 7)
    fitted = canvas.fit_to_canvas(eight.strokes)
    top_y = fitted[0][np.argmax(eight.strokes[0][:, 1])][1]
    assert top_y < 128


def test_writers_are_split_not_drawings():
    arrays = sources.PenDigitArrays(
        x=np.zeros((30, 28, 28), np.uint8),
        y=np.zeros(30, np.uint8),
        writer=np.arange(1, 31, dtype=np.int16),
        size=np.zeros(30, np.int16),
    )
    roles = sources.pendigits_by_role(arrays)
    writers = {role: set(part.writer.tolist()) for role, part in roles.items()}
    assert writers["test"] == set(sources.PENDIGITS_TEST_WRITERS)
    assert writers["val"] == set(sources.PENDIGITS_VAL_WRITERS)
    assert not writers["train"] & (writers["test"] | writers["val"])
    assert sum(len(w) for w in writers.values()) == 30


def test_gzip_of_the_shared_file_is_what_we_parse():
    raw = gzip.decompress(sources.pendigits_path().read_bytes())
    assert len(raw) == 3_641_673
