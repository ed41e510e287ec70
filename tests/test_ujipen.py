"""The UJI pen digits: read from their JSON, split by writer, a training source and
the ``ujipen`` test set of real continental writers."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from collector.formats import DatasetError, ujipen
from collector.formats.unipen import PenDigit
from training.config import TrainConfig
from training.sources import load_training_data
from training.sources import ujipen as uji_source


def _digit(label: int, writer: int, session: int) -> PenDigit:
    stroke = np.asarray([[10 + writer, 20], [30, 40 + label], [50, 90]], np.float32)
    return PenDigit(label=label, writer=writer, sample=session, strokes=[stroke])


def test_a_file_in_the_exact_format_reads_back_with_writer_and_session(tmp_path):
    # given three writers' digits, two sessions each, written as the source's JSON
    digits = [_digit(label, w, s) for w in range(3) for s in (1, 2) for label in range(10)]
    path = tmp_path / "uji.json.gz"
    path.write_bytes(gzip.compress(ujipen.to_json(digits).encode()))
    # when it is read
    read = ujipen.read(path)
    # then every digit comes back with its writer (position // 2) and its session
    assert len(read) == 60
    assert sorted((d.label, d.writer, d.sample) for d in read) == sorted(
        (d.label, d.writer, d.sample) for d in digits
    )
    first = next(d for d in read if (d.label, d.writer, d.sample) == (7, 2, 2))
    assert first.strokes[0].tolist() == [[12, 20], [30, 47], [50, 90]]


@pytest.mark.parametrize(
    "text", ['{"rawData": {"x": []}}', '{"other": {}}', "[1, 2]", '{"rawData": {"1": [[["a"]]]}}']
)
def test_a_file_that_is_not_uji_pen_digits_is_refused(tmp_path, text):
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(DatasetError):
        ujipen.read(path)


def test_the_shared_file_holds_60_writers_each_writing_every_digit_twice():
    digits = uji_source.load_ujipen_strokes()
    assert len(digits) == 1200
    per_writer = np.bincount([d.writer for d in digits])
    assert per_writer.tolist() == [20] * 60
    assert {(d.label, d.sample) for d in digits if d.writer == 17} == {
        (label, s) for label in range(10) for s in (1, 2)
    }


def test_writers_are_split_not_samples():
    roles = {w: uji_source.role(w) for w in range(uji_source.WRITERS)}
    counts = {r: list(roles.values()).count(r) for r in ("train", "val", "test")}
    assert counts == {"train": 30, "val": 10, "test": 20}
    # both sessions of a writer always share a role
    digits = uji_source.load_ujipen_strokes()
    by_writer = {}
    for digit in digits:
        by_writer.setdefault(digit.writer, set()).add(uji_source.role(digit.writer))
    assert all(len(r) == 1 for r in by_writer.values())


def test_a_changed_file_is_refused(tmp_path, settings):
    # given a copy of the shared file with one byte changed
    data = bytearray(uji_source.ujipen_path().read_bytes())
    data[-5] ^= 0x01
    (tmp_path / uji_source.UJIPEN_FILE).write_bytes(bytes(data))
    settings.DIGITS_UJIPEN_DIR = str(tmp_path)
    with pytest.raises(DatasetError, match="sha256"):
        uji_source.load_ujipen_strokes()


@pytest.mark.django_db
def test_as_a_source_it_trains_validates_and_is_judged_by_writer():
    # when a run's data comes from the UJI pen digits alone (no variants: seconds)
    data = load_training_data(TrainConfig(sources=("ujipen",), augment=False))
    # then its training, validation and test images are the three writer roles' digits
    assert (len(data.train), len(data.val), len(data.tests["ujipen"])) == (600, 200, 400)
    assert np.bincount(data.tests["ujipen"].y).tolist() == [40] * 10
    assert data.manifest["ujipen"]["test_writers"] == sorted(uji_source.UJIPEN_TEST_WRITERS)
    # and every image is a drawing's model input (ink, centred by the serving preprocessing)
    assert data.train.x.dtype == np.uint8 and data.train.x.shape[1:] == (28, 28)
    assert (data.train.x.reshape(600, -1).max(axis=1) > 200).all()
