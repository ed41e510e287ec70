"""File and row together or not at all; deleting a drawing deletes its file."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from collector.models import Drawing, NewDrawing, SplitCounter, StorageUnavailable


def files(settings) -> list[Path]:
    root = Path(settings.MEDIA_ROOT) / "drawings"
    return list(root.rglob("*.png")) if root.exists() else []


@pytest.mark.django_db(transaction=True)
def test_a_failed_row_insert_leaves_no_file(canvas_png, settings, monkeypatch):
    def broken_save(self, *args, **kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(Drawing, "save", broken_save)
    with pytest.raises(RuntimeError):
        Drawing.objects.add(NewDrawing(canvas_png(2), 2))
    assert Drawing.objects.count() == 0 and files(settings) == []
    assert sum(c.train + c.val + c.test for c in SplitCounter.objects.all()) == 0


@pytest.mark.django_db(transaction=True)
def test_a_storage_failure_is_a_clear_error_with_no_row(canvas_png, settings, monkeypatch):
    def full_disk(name, content, max_length=None):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(default_storage, "save", full_disk)
    with pytest.raises(StorageUnavailable, match="could not be saved"):
        Drawing.objects.add(NewDrawing(canvas_png(2), 2))
    assert Drawing.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_a_leftover_file_from_a_crash_is_reused(canvas_png, settings):
    png = canvas_png(6)
    first, _ = Drawing.objects.add(NewDrawing(png, 6))
    name = first.image.name
    Drawing.objects.filter(pk=first.pk).delete()  # the row goes (and its file, on commit)
    assert default_storage.save(name, ContentFile(png)) == name  # as if a crash left it
    again, created = Drawing.objects.add(NewDrawing(png, 6))
    assert created and again.image.name == name and len(files(settings)) == 1


@pytest.mark.django_db(transaction=True)
def test_deleting_a_drawing_removes_its_file_and_its_count(canvas_png, settings):
    drawing, _ = Drawing.objects.add(NewDrawing(canvas_png(8), 8))
    assert len(files(settings)) == 1
    drawing.delete()
    assert files(settings) == []
    counter = SplitCounter.objects.get(label=8)
    assert counter.train + counter.val + counter.test == 0
