"""training.sources: MNIST from IDX files (checksummed), the UNIPEN pen digits split by writer."""

from __future__ import annotations

import gzip
import shutil

import numpy as np
import pytest

from training.sources import base as source_base
from training.sources import mnist as mnist_source
from training.sources import pendigits as pen_source


def test_mnist_loads_from_the_configured_directory():
    mnist = mnist_source.load_mnist()
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
    for name, _ in mnist_source.MNIST_FILES.values():
        shutil.copy(mnist_source.mnist_dir() / name, tmp_path / name)
    target = tmp_path / mnist_source.MNIST_FILES["test_labels"][0]
    data = bytearray(target.read_bytes())
    data[-1] ^= 0xFF
    target.write_bytes(bytes(data))
    # when / then
    with pytest.raises(source_base.ChecksumMismatch, match="t10k-labels"):
        mnist_source.load_mnist(tmp_path)


def test_a_configured_directory_without_the_files_does_not_download(tmp_path):
    with pytest.raises(source_base.DatasetError, match="missing"):
        mnist_source.load_mnist(tmp_path)


def test_pen_digits_parse_into_30_writers_with_the_documented_class_counts(pen_digits):
    assert len(pen_digits) == 7494
    assert len({d.writer for d in pen_digits}) == 30
    counts = np.bincount([d.label for d in pen_digits], minlength=10).tolist()
    assert counts == [780, 779, 780, 719, 780, 720, 720, 778, 719, 719]
    assert all(len(s) >= 1 and s.shape[1] == 2 for d in pen_digits for s in d.strokes)


def test_writers_are_split_not_drawings():
    arrays = pen_source.PenDigitArrays(
        x=np.zeros((30, 28, 28), np.uint8),
        y=np.zeros(30, np.uint8),
        writer=np.arange(1, 31, dtype=np.int16),
        size=np.zeros(30, np.int16),
    )
    roles = pen_source.pendigits_by_role(arrays)
    writers = {role: set(part.writer.tolist()) for role, part in roles.items()}
    assert writers["test"] == set(pen_source.PENDIGITS_TEST_WRITERS)
    assert writers["val"] == set(pen_source.PENDIGITS_VAL_WRITERS)
    assert not writers["train"] & (writers["test"] | writers["val"])
    assert sum(len(w) for w in writers.values()) == 30


def test_gzip_of_the_shared_file_is_what_we_parse():
    raw = gzip.decompress(pen_source.pendigits_path().read_bytes())
    assert len(raw) == 3_641_673
