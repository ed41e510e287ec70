"""import_drawings and export_dataset: idempotent imports and a lossless round trip."""

from __future__ import annotations

import gzip
import io
import zipfile
from collections import Counter

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from collector.formats import idx
from collector.models import Drawing, NewDrawing
from training.sources import pendigits as pen_source


def run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, verbosity=0)
    return out.getvalue()


@pytest.fixture
def small_pendigits(tmp_path):
    """The first 60 digits of the shared UNIPEN file, as a UNIPEN file of their own."""
    text = gzip.decompress(pen_source.pendigits_path().read_bytes()).decode("ascii")
    segments = text.split(".SEGMENT")
    small = ".SEGMENT".join(segments[:61])
    path = tmp_path / "small.tra.gz"
    path.write_bytes(gzip.compress(small.encode("ascii")))
    return path


def test_pendigits_import_is_idempotent_and_keeps_writers(db, small_pendigits):
    first = run("import_drawings", "pendigits", str(small_pendigits))
    assert "added=60 skipped=0 refused=0" in first
    second = run("import_drawings", "pendigits", str(small_pendigits))
    assert "added=0 skipped=60" in second
    assert Drawing.objects.count() == 60
    drawing = Drawing.objects.first()
    assert drawing.source == "import:pendigits" and drawing.writer.isdigit()
    assert drawing.status == "approved"


def test_folder_import_reports_what_it_refused(db, tmp_path, canvas_png):
    (tmp_path / "3").mkdir()
    (tmp_path / "3" / "a.png").write_bytes(canvas_png(3))
    (tmp_path / "3" / "broken.png").write_bytes(b"not a png")
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "b.png").write_bytes(canvas_png(4))
    output = run("import_drawings", "folder", str(tmp_path), "--status", "pending")
    assert "added=1 skipped=0 refused=2" in output
    assert "not a readable image" in output and "digit from 0 to 9" in output
    assert Drawing.objects.get().status == "pending"


def test_export_then_import_into_an_empty_database_gives_everything_back(
    db, tmp_path, canvas_png, settings
):
    # given a dataset with mixed labels, splits and statuses
    for label in range(10):
        for index in range(3):
            Drawing.objects.add(NewDrawing(canvas_png(label, index), label))
    Drawing.objects.filter(label__in=(2, 5)).update(status="approved")
    Drawing.objects.filter(label=9).update(status="rejected")
    before = {d.sha256: (d.label, d.split, d.status, d.source) for d in Drawing.objects.all()}
    # when exported, the database emptied (files too), and the export imported
    archive = tmp_path / "dataset.zip"
    assert "exported 30 drawings" in run("export_dataset", "--format", "zip", str(archive))
    Drawing.objects.all().delete()
    settings.MEDIA_ROOT = tmp_path / "fresh-media"
    run("import_drawings", "zip", str(archive))
    # then every drawing comes back with the same bytes, label, split and status
    after = {d.sha256: (d.label, d.split, d.status, d.source) for d in Drawing.objects.all()}
    assert after == before
    with zipfile.ZipFile(archive) as z:
        assert z.read("manifest.csv").decode().splitlines()[0] == (
            "file,sha256,label,split,status,source,writer,created"
        )


def test_model_input_exports(db, tmp_path, canvas_png):
    for label in range(10):
        Drawing.objects.add(NewDrawing(canvas_png(label), label, status="approved"))
    Drawing.objects.add(NewDrawing(canvas_png(0, 1), 0, status="pending"))
    run("export_dataset", "--format", "npz", str(tmp_path / "d.npz"))
    with np.load(tmp_path / "d.npz") as data:
        assert data["x"].shape == (10, 28, 28) and data["x"].dtype == np.uint8
        assert sorted(data["y"].tolist()) == list(range(10))
    run("export_dataset", "--format", "kaggle-csv", str(tmp_path / "d.csv"))
    lines = (tmp_path / "d.csv").read_text().splitlines()
    assert lines[0].startswith("label,pixel0,") and lines[0].endswith(",pixel783")
    assert len(lines) == 11 and len(lines[1].split(",")) == 785
    run("export_dataset", "--format", "idx", "--status", "all", str(tmp_path / "d.zip"))
    with zipfile.ZipFile(tmp_path / "d.zip") as z:
        labels = [
            idx.parse(gzip.decompress(z.read(f"{s}-labels-idx1-ubyte.gz")))
            for s in ("train", "val", "test")
        ]
        images = idx.parse(gzip.decompress(z.read("train-images-idx3-ubyte.gz")))
    assert sum(len(x) for x in labels) == 11 and images.shape[1:] == (28, 28)


def test_model_input_exports_are_written_chunk_by_chunk_and_hold_every_input(
    db, tmp_path, canvas_png, monkeypatch
):
    """Streamed a few drawings at a time (memory holds one chunk, whatever the
    dataset's size), each format still holds every drawing's own input once."""
    from classifier import preprocessing
    from collector import dataset, input_exports

    monkeypatch.setattr(input_exports, "CHUNK", 3)
    for index in range(11):
        Drawing.objects.add(
            NewDrawing(canvas_png(index % 10, index), index % 10, status="approved")
        )
    rows = list(Drawing.objects.order_by("id"))
    expected = np.stack([
        np.round(preprocessing.to_model_input(dataset.read_image(d)) * 255).astype(np.uint8)
        for d in rows
    ])  # fmt: skip
    run("export_dataset", "--format", "npz", str(tmp_path / "d.npz"))
    with np.load(tmp_path / "d.npz") as data:
        assert np.array_equal(data["x"], expected)
        assert data["y"].tolist() == [d.label for d in rows]
        assert data["split"].tolist() == [d.split for d in rows]
        assert data["status"].tolist() == ["approved"] * 11
        assert data["sha256"].tolist() == [d.sha256 for d in rows]
    run("export_dataset", "--format", "idx", str(tmp_path / "d.zip"))
    with zipfile.ZipFile(tmp_path / "d.zip") as z:
        for split in ("train", "val", "test"):
            mine = [i for i, d in enumerate(rows) if d.split == split]
            images = idx.parse(gzip.decompress(z.read(f"{split}-images-idx3-ubyte.gz")))
            labels = idx.parse(gzip.decompress(z.read(f"{split}-labels-idx1-ubyte.gz")))
            assert np.array_equal(images, expected[mine]) and images.shape[1:] == (28, 28)
            assert labels.tolist() == [rows[i].label for i in mine]
    run("export_dataset", "--format", "kaggle-csv", str(tmp_path / "d.csv"))
    table = np.loadtxt(tmp_path / "d.csv", delimiter=",", skiprows=1, dtype=np.int64)
    assert table[:, 0].tolist() == [d.label for d in rows]
    assert np.array_equal(table[:, 1:].reshape(-1, 28, 28), expected)


def test_export_with_nothing_to_export(db, tmp_path):
    with pytest.raises(CommandError, match="No drawings"):
        run("export_dataset", "--format", "npz", str(tmp_path / "d.npz"))
    assert not (tmp_path / "d.npz").exists()


def test_split_proportions_hold_per_label(db, canvas_png):
    for label in (1, 7):
        for index in range(20):
            Drawing.objects.add(NewDrawing(canvas_png(label, index), label))
    per_label = Counter(Drawing.objects.values_list("label", "split"))
    for label in (1, 7):
        assert (
            per_label[(label, "train")],
            per_label[(label, "val")],
            per_label[(label, "test")],
        ) == (16, 2, 2)


def test_exports_read_drawings_through_the_checked_reader(db, tmp_path, small_pendigits):
    # given 60 drawings, one of whose files was damaged on disk and one lost
    from django.core.files.storage import default_storage

    run("import_drawings", "pendigits", str(small_pendigits))
    damaged, lost = Drawing.objects.order_by("id")[:2]
    with default_storage.open(damaged.image.name, "rb") as handle:
        data = bytearray(handle.read())
    data[-20] ^= 0xFF
    default_storage.delete(damaged.image.name)
    default_storage.save(damaged.image.name, io.BytesIO(bytes(data)))
    default_storage.delete(lost.image.name)
    # when every format is exported
    for fmt in ("zip", "npz", "kaggle-csv"):
        out = run("export_dataset", "--format", fmt, str(tmp_path / f"d.{fmt}"))
        # then neither is exported as it is: the 58 intact drawings are
        assert "exported 58 drawings" in out, (fmt, out)
    with zipfile.ZipFile(tmp_path / "d.zip") as archive:
        assert f"drawings/{damaged.sha256}.png" not in archive.namelist()


def test_an_import_into_an_empty_data_directory_creates_its_database_first(
    db, tmp_path, canvas_png
):
    import subprocess
    import sys
    from pathlib import Path

    from .conftest import instance_env

    folder = tmp_path / "digits" / "3"
    folder.mkdir(parents=True)
    (folder / "a.png").write_bytes(canvas_png(3))
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run(
        [sys.executable, str(root / "manage.py"), "import_drawings", "folder",
         str(tmp_path / "digits")],
        env=instance_env(tmp_path / "empty-instance"), cwd=root, capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert "no such table" not in done.stderr and "added=1" in done.stdout


def test_the_ndjson_and_the_zip_export_of_one_dataset_import_each_drawing_once(
    db, tmp_path, settings, pen_digits
):
    from classifier import canvas

    for digit in pen_digits[:6]:
        strokes = canvas.parse_strokes(
            canvas.strokes_as_json(canvas.timed(canvas.fit_to_canvas(digit.strokes), 8.0))
        )
        Drawing.objects.add(NewDrawing(canvas.render_canvas_png(strokes), digit.label,
                                       strokes=strokes))  # fmt: skip
    run("export_dataset", "--format", "zip", str(tmp_path / "d.zip"))
    run("export_dataset", "--format", "ndjson", str(tmp_path / "d.ndjson"))
    Drawing.objects.all().delete()
    settings.MEDIA_ROOT = tmp_path / "fresh-media"
    # the ndjson first (its pictures made anew from the strokes), then the zip
    assert "added=6" in run("import_drawings", "ndjson", str(tmp_path / "d.ndjson"))
    assert "added=0 skipped=6" in run("import_drawings", "zip", str(tmp_path / "d.zip"))
    assert "added=0 skipped=6" in run("import_drawings", "ndjson", str(tmp_path / "d.ndjson"))
    assert Drawing.objects.count() == 6
    # and the other way round: the zip first keeps the original pictures
    Drawing.objects.all().delete()
    assert "added=6" in run("import_drawings", "zip", str(tmp_path / "d.zip"))
    assert "added=0 skipped=6" in run("import_drawings", "ndjson", str(tmp_path / "d.ndjson"))


def test_an_import_reads_its_file_a_drawing_at_a_time_and_counts_it_first(db, tmp_path, canvas_png):
    """A million drawings' pictures and strokes are gigabytes: the readers of files
    that can be that large are streams, and what the progress bar counts up to is
    counted from names and lines alone, exactly what the stream then yields (bad
    lines, blank lines and folders that are no digit included)."""
    import inspect
    import json

    from collector import imports

    for label in range(4):
        Drawing.objects.add(NewDrawing(canvas_png(label), label))
    archive = tmp_path / "dataset.zip"
    run("export_dataset", "--format", "zip", str(archive))
    lines = tmp_path / "dataset.ndjson"
    drawn = [[[10, 10, 0], [200, 200, 50]], [[200, 10, 60], [10, 200, 90]]]
    record = json.dumps({"label": 4, "strokes": drawn})
    lines.write_text(f"{record}\n\n   \nnot json\n{json.dumps({'label': 3})}\n{record}\n")
    folder = tmp_path / "folder"
    for name, label in (("3", 3), ("3", 4), ("x", 5)):
        (folder / name).mkdir(parents=True, exist_ok=True)
        (folder / name / f"{label}.png").write_bytes(canvas_png(label))
    (folder / "3" / "notes.txt").write_text("not a drawing")
    zipped = tmp_path / "folder.zip"
    with zipfile.ZipFile(zipped, "w") as target:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                target.write(path, f"top/{path.relative_to(folder)}")
    cases = [("zip", archive, imports.KINDS), ("ndjson", lines, imports.KINDS),
             ("folder", folder, imports.KINDS), ("folder", zipped, imports.JOB_READERS)]  # fmt: skip
    for kind, path, readers in cases:
        items, total = imports.open_items(kind, path, readers)
        assert inspect.isgenerator(items), kind
        assert total == len(list(items)), kind
    assert imports.open_items("ndjson", lines)[1] == 2 + 2  # two drawings, two bad lines
