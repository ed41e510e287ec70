"""Imports store in bulk: a batch's drawings checked one by one, then stored
together (files, then one transaction: the splits, one INSERT), with the same
outcome as one ``add`` each; an import stopped part way, run again, adds each
drawing once."""

from __future__ import annotations

import hashlib
from collections import Counter

import pytest
from django.core.files.storage import default_storage
from django.db import connection
from django.test.utils import CaptureQueriesContext

from classifier import canvas
from collector import imports
from collector.models import Drawing, NewDrawing, SplitCounter, StorageUnavailable
from collector.storing import DrawingManager
from training.sources import pendigits as pen_source

pytestmark = pytest.mark.django_db


def items(digits, source: str = "import:test") -> list[imports.Item]:
    """Each digit as an import brings it: its picture, label, writer and strokes."""
    made = []
    for digit in digits:
        strokes = canvas.strokes_as_json(canvas.timed(canvas.fit_to_canvas(digit.strokes), 8))
        png = canvas.render_canvas_png(canvas.parse_strokes(strokes))
        made.append(imports.Item(png, digit.label, source, writer=str(digit.writer),
                                 strokes=strokes))  # fmt: skip
    return made


def stored_files() -> set[str]:
    """Every picture storage holds."""
    found = set()
    for folder in default_storage.listdir("drawings")[0]:
        found.update(f"drawings/{folder}/{name}" for name in default_storage.listdir(
            f"drawings/{folder}")[1])  # fmt: skip
    return found


@pytest.fixture
def digits(pen_digits):
    """Sixty digits by four training writers."""
    writers = sorted({d.writer for d in pen_digits} - set(pen_source.PENDIGITS_TEST_WRITERS))[:4]
    return [d for d in pen_digits if d.writer in writers][:60]


def test_a_batch_is_stored_with_one_insert_and_its_splits_counted_exactly(digits):
    with CaptureQueriesContext(connection) as captured:
        summary = imports.run_import(iter(items(digits)), status="approved")
    assert summary.added == 60, summary.line()
    inserts = [q["sql"] for q in captured.captured_queries
               if q["sql"].startswith('INSERT INTO "collector_drawing"')]  # fmt: skip
    assert len(inserts) <= 2  # one add each made sixty (SQLite takes 52 rows a statement)
    # every drawing counted in its split, and each writer's drawings in one split
    per_label = Counter(Drawing.objects.values_list("label", "split"))
    for counter in SplitCounter.objects.all():
        for split in ("train", "val", "test"):
            assert getattr(counter, split) == per_label[(counter.label, split)]
    writers = Counter(Drawing.objects.values_list("writer", "split"))
    assert len(writers) == len({w for w, _ in writers})
    # each row points at its picture, with its strokes, and the files are exactly those
    rows = list(Drawing.objects.all())
    assert stored_files() == {d.image.name for d in rows}
    for drawing in rows:
        with default_storage.open(drawing.image.name, "rb") as handle:
            picture = handle.read()
        assert picture == canvas.render_canvas_png(canvas.parse_strokes(drawing.strokes))


def test_an_import_stopped_by_a_full_disk_and_run_again_adds_each_drawing_once(digits, monkeypatch):
    monkeypatch.setattr(imports, "IMPORT_BATCH", 25)
    default_storage.exists("drawings")  # the storage made, to patch its class
    storage = type(default_storage._wrapped)
    saving, calls = storage.save, []

    def full_after_forty(self, name, content, **kwargs):
        calls.append(name)
        if len(calls) > 40:  # the second batch's fifteenth picture
            raise OSError(28, "No space left on device")
        return saving(self, name, content, **kwargs)

    monkeypatch.setattr(storage, "save", full_after_forty)
    with pytest.raises(StorageUnavailable):
        imports.run_import(iter(items(digits)), status="approved")
    # the first batch is stored; of the second, nothing: no row, no file
    assert Drawing.objects.count() == 25
    assert stored_files() == set(Drawing.objects.values_list("image", flat=True))

    monkeypatch.setattr(storage, "save", saving)
    summary = imports.run_import(iter(items(digits)), status="approved")
    assert (summary.added, summary.skipped) == (35, 25), summary.line()
    assert Drawing.objects.count() == 60
    assert len(set(Drawing.objects.values_list("sha256", flat=True))) == 60
    assert stored_files() == set(Drawing.objects.values_list("image", flat=True))
    assert sum(c.train + c.val + c.test for c in SplitCounter.objects.all()) == 60


def test_each_drawing_of_a_batch_gets_what_one_add_would_give_it(digits, canvas_png):
    good = items(digits[:3])
    seven = items([d for d in digits if d.label == 7][:1])[0]
    wrong_strokes = imports.Item(canvas_png(1), 1, "import:test", strokes=seven.strokes)
    picture_only = imports.Item(good[0].data, good[0].label, "import:test")
    batch = [picture_only, good[1], wrong_strokes, good[0], good[2], good[1]]
    summary = imports.run_import(iter(batch), status="pending")
    # strokes that draw another picture are refused (they stopped the whole import)
    assert (summary.added, summary.skipped) == (3, 2), summary.line()
    assert sum(summary.refused.values()) == 1 and "strokes" in " ".join(summary.refused)
    # the picture stored first without strokes gained them from its second copy
    first = Drawing.objects.get(sha256=hashlib.sha256(good[0].data).hexdigest())
    assert first.strokes == canvas.strokes_as_json(canvas.parse_strokes(good[0].strokes))
    assert first.status == "pending"
    assert Drawing.objects.filter(strokes__isnull=True).count() == 0


def test_a_drawing_stored_meanwhile_by_someone_else_is_not_stored_twice(digits, monkeypatch):
    batch = items(digits[:5])
    storing = DrawingManager.store_many

    def contribution_first(self, drawings, data, **kwargs):
        # a contribution of the third picture arrives between the check and the insert
        Drawing.objects.add(NewDrawing(batch[2].data, batch[2].label))
        return storing(self, drawings, data, **kwargs)

    monkeypatch.setattr(DrawingManager, "store_many", contribution_first)
    summary = imports.run_import(iter(batch), status="approved")
    assert (summary.added, summary.skipped) == (4, 1), summary.line()
    assert Drawing.objects.count() == 5
    assert stored_files() == set(Drawing.objects.values_list("image", flat=True))


@pytest.mark.django_db(transaction=True)
def test_a_picture_a_contribution_took_meanwhile_keeps_its_file(digits, monkeypatch):
    """A contribution of the same picture arrives after the import wrote the file and
    before its insert: the contribution finds the file whole and takes it, the
    import's insert loses, and the file it wrote stays (the contribution's row points
    at it)."""
    from collector import storing

    batch = items(digits[:5])
    writing, started, contributed = storing._write_file, [], []

    def then_a_contribution(sha256, data):
        written = writing(sha256, data)
        if data == batch[2].data and not started:  # the import's write (not the contribution's)
            started.append(sha256)
            contributed.append(Drawing.objects.add(NewDrawing(batch[2].data, batch[2].label)))
        return written

    monkeypatch.setattr(storing, "_write_file", then_a_contribution)
    summary = imports.run_import(iter(batch), status="approved")
    assert (summary.added, summary.skipped) == (4, 1), summary.line()
    taken, created = contributed[0]
    assert created
    with default_storage.open(taken.image.name, "rb") as handle:
        assert handle.read() == batch[2].data
    assert stored_files() == set(Drawing.objects.values_list("image", flat=True))
