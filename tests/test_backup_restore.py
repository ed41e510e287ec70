"""backup / restore: everything comes back into an empty instance, or nothing changes."""

from __future__ import annotations

import hashlib
import io
import zipfile

import pytest
from django.core.files.storage import default_storage
from django.core.management import CommandError, call_command

from classifier.models import ModelVersion
from classifier.registry import BOOTSTRAP_DIR, register_directory
from collector.models import Drawing, NewDrawing, SplitCounter

from .conftest import instance_env


def snapshot() -> dict:
    drawings = {}
    for d in Drawing.objects.all():
        with default_storage.open(d.image.name, "rb") as handle:
            drawings[d.sha256] = (
                d.label,
                d.split,
                d.status,
                hashlib.sha256(handle.read()).hexdigest(),
            )
    versions = {
        v.version: (v.status, v.architecture, len(v.plots)) for v in ModelVersion.objects.all()
    }
    return {"drawings": drawings, "versions": versions,
            "active": ModelVersion.active().version, "promotions": ModelVersion.active().promotions.count()}  # fmt: skip


def emptied(settings, tmp_path) -> None:
    """The instance as a fresh one: no drawings, versions or counts, an empty media folder."""
    Drawing.objects.all().delete()
    ModelVersion.objects.all().delete()
    SplitCounter.objects.all().delete()
    settings.MEDIA_ROOT = tmp_path / "fresh-media"


def rewritten_parts(source, target, change) -> None:
    """``source`` copied to ``target`` with ``change(name, data)`` applied to every
    stored file inside its part (each part's own checksums and the top manifest's
    left as they were, as a tool that rewrote the archive would leave them)."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for item in old.infolist():
            data = old.read(item.filename)
            if item.filename.startswith("files/part-"):
                out = io.BytesIO()
                with zipfile.ZipFile(io.BytesIO(data)) as part, zipfile.ZipFile(out, "w") as copy:
                    for inner in part.infolist():
                        content = part.read(inner.filename)
                        if inner.filename != "manifest.json":
                            content = change(inner.filename, content)
                        copy.writestr(inner, content)
                data = out.getvalue()
            new.writestr(item, data)


def backed_up(path) -> dict[str, bytes]:
    """Every stored file a backup holds, by name, read as a restore reads them."""
    import json

    from operations import backups

    with zipfile.ZipFile(path) as archive:
        manifest = json.loads(archive.read("manifest.json"))
        return {name: data for name, _, data in backups.backed_up_files(archive, manifest)}


def test_a_restore_into_an_empty_instance_gives_everything_back(
    active_model, canvas_png, settings, tmp_path
):
    # given drawings of every status and two model versions (v1 rolled back to after v2)
    for label in range(10):
        Drawing.objects.add(NewDrawing(canvas_png(label), label))
    Drawing.objects.filter(label__lt=4).update(status="approved")
    Drawing.objects.filter(label=9).update(status="rejected")
    register_directory(BOOTSTRAP_DIR, activate=True, note="v2")
    active_model.promote(reason="roll back")
    before = snapshot()
    # when backed up, the instance emptied (rows and files), and the backup restored
    call_command("backup", str(tmp_path / "b.zip"), stdout=io.StringIO())
    emptied(settings, tmp_path)
    out = io.StringIO()
    call_command("restore", str(tmp_path / "b.zip"), stdout=out)
    # then every drawing (same bytes), label, split, status, version and the active one are back
    assert snapshot() == before
    assert "restored the database and" in out.getvalue()
    from classifier import runtime

    assert runtime.active_model().version == before["active"]  # its artifact loads and serves
    assert (
        SplitCounter.objects.get(label=3).train
        + SplitCounter.objects.get(label=3).test
        + SplitCounter.objects.get(label=3).val
        == 1
    )


def test_the_database_travels_as_json_lines_and_older_backups_still_restore(
    active_model, canvas_png, settings, tmp_path, monkeypatch
):
    """The fixture is streamed into the archive, one object a line (read back a line
    at a time); a backup from before, with one JSON document, restores as well."""
    import json

    for label in range(4):
        Drawing.objects.add(NewDrawing(canvas_png(label), label))
    before = snapshot()
    call_command("backup", str(tmp_path / "b.zip"), stdout=io.StringIO())
    with zipfile.ZipFile(tmp_path / "b.zip") as archive:
        lines = archive.read("database.jsonl").decode().splitlines()
        assert "database.json" not in archive.namelist()
    objects = [json.loads(line) for line in lines]
    assert sum(o["model"] == "collector.drawing" for o in objects) == 4
    assert not any(
        o["model"] in ("collector.modelinput", "collector.drawingcount") for o in objects
    )
    # the same backup as an older instance wrote it: one JSON document
    legacy = tmp_path / "legacy.zip"
    with zipfile.ZipFile(tmp_path / "b.zip") as source, zipfile.ZipFile(legacy, "w") as target:
        for name in source.namelist():
            if name == "database.jsonl":
                target.writestr("database.json", json.dumps(objects))
            else:
                target.writestr(name, source.read(name))
    emptied(settings, tmp_path)
    call_command("restore", str(legacy), stdout=io.StringIO())
    assert snapshot() == before


def test_restore_refuses_a_non_empty_instance_and_a_damaged_backup(
    active_model, canvas_png, tmp_path
):
    import json

    call_command("backup", str(tmp_path / "b.zip"), stdout=io.StringIO())
    drawing, _ = Drawing.objects.add(NewDrawing(canvas_png(1), 1))
    with pytest.raises(CommandError, match="restore into a fresh one"):
        call_command("restore", str(tmp_path / "b.zip"), stdout=io.StringIO())
    drawing.delete()
    register_directory(BOOTSTRAP_DIR, activate=False, note="a trained model")
    with pytest.raises(CommandError, match="restore into a fresh one"):
        call_command("restore", str(tmp_path / "b.zip"), stdout=io.StringIO())
    # a backup whose model file was altered is refused before anything is written
    damaged = tmp_path / "damaged.zip"
    rewritten_parts(tmp_path / "b.zip", damaged, lambda name, data: (
        data[:-1] + bytes([data[-1] ^ 0xFF]) if name.endswith("model.tflite") else data))  # fmt: skip
    ModelVersion.objects.all().delete()
    with pytest.raises(CommandError, match=r"files/part-00000\.zip is damaged"):
        call_command("restore", str(damaged), stdout=io.StringIO())
    # and with the part's checksum made to match, by the file's own checksum in the part
    with zipfile.ZipFile(damaged) as source:
        manifest = json.loads(source.read("manifest.json"))
        for part in manifest["parts"]:
            part["sha256"] = hashlib.sha256(source.read(part["name"])).hexdigest()
        members = {n: source.read(n) for n in source.namelist() if n != "manifest.json"}
    with zipfile.ZipFile(damaged, "w") as target:
        for name, data in members.items():
            target.writestr(name, data)
        target.writestr("manifest.json", json.dumps(manifest))
    with pytest.raises(CommandError, match=r"model\.tflite is damaged .*checksum mismatch"):
        call_command("restore", str(damaged), stdout=io.StringIO())
    assert ModelVersion.objects.count() == 0
    with pytest.raises(CommandError, match="not a Digits backup"):
        (tmp_path / "junk.zip").write_bytes(b"nope")
        call_command("restore", str(tmp_path / "junk.zip"), stdout=io.StringIO())


def test_restore_into_an_instance_that_make_run_prepared(active_model, canvas_png, tmp_path):
    # given a backup of an instance with drawings and its own model versions
    for label in (2, 5):
        Drawing.objects.add(NewDrawing(canvas_png(label), label))
    register_directory(BOOTSTRAP_DIR, activate=True, note="trained there")
    before = snapshot()
    call_command("backup", str(tmp_path / "b.zip"), stdout=io.StringIO())
    # and a fresh instance that holds only the bootstrap model (as `make run` leaves it)
    Drawing.objects.all().delete()
    ModelVersion.objects.all().delete()
    SplitCounter.objects.all().delete()
    from classifier.registry import ensure_active_model

    ensure_active_model()
    # when restored, the backup's drawings and versions replace the bootstrap
    call_command("restore", str(tmp_path / "b.zip"), stdout=io.StringIO())
    assert snapshot() == before
    assert ModelVersion.active().note == "trained there"


def test_restore_into_an_empty_data_directory(active_model, canvas_png, tmp_path):
    """A new machine: nothing but the backup. restore creates and migrates the database."""
    import subprocess
    import sys
    from pathlib import Path

    Drawing.objects.add(NewDrawing(canvas_png(4), 4))
    call_command("backup", str(tmp_path / "b.zip"), stdout=io.StringIO())
    fresh = tmp_path / "new-machine"
    root = Path(__file__).resolve().parent.parent
    env = instance_env(fresh)
    run = subprocess.run(
        [sys.executable, str(root / "manage.py"), "restore", str(tmp_path / "b.zip")],
        env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    assert "restored the database and" in run.stdout
    count = subprocess.run(
        [sys.executable, str(root / "manage.py"), "shell", "-c",
         "from collector.models import Drawing; from classifier.models import ModelVersion; "
         "print(Drawing.objects.count(), ModelVersion.active().version)"],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert count.stdout.splitlines()[-1].split() == ["1", str(active_model.version)]


def _manage(env: dict, *args: str) -> str:
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    done = subprocess.run(
        [sys.executable, str(root / "manage.py"), *args],
        env=env, cwd=root, capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def _snapshot_of(env: dict) -> dict:
    import json

    code = (
        "import json; from tests.test_backup_restore import snapshot; print(json.dumps(snapshot()))"
    )
    return json.loads(_manage(env, "shell", "-c", code).splitlines()[-1])


def test_a_backup_moves_between_sqlite_and_postgresql(active_model, canvas_png, tmp_path):
    """From this suite's database into a fresh SQLite instance, and from there into
    a fresh instance on this suite's engine: on CI's PostgreSQL run, PostgreSQL →
    SQLite → PostgreSQL, with the same drawings, splits, versions and active model."""
    import json
    import os

    # given drawings in every split and status, a second version that served, a
    # rejected candidate, and a rollback to the first
    for i in range(30):  # ten of each of three digits: 8 train, 1 val, 1 test each
        Drawing.objects.add(NewDrawing(canvas_png(i % 3, i // 3), i % 3))
    Drawing.objects.filter(label=1).update(status="approved")
    register_directory(BOOTSTRAP_DIR, activate=True, note="v2")
    register_directory(BOOTSTRAP_DIR, activate=False, note="v3").reject(["worse"])
    active_model.promote(reason="roll back")
    before = json.loads(json.dumps(snapshot()))
    assert {split for _, split, _, _ in before["drawings"].values()} == {"train", "val", "test"}
    call_command("backup", str(tmp_path / "here.zip"), stdout=io.StringIO())
    # when restored into SQLite, backed up there, and restored into this engine
    on_sqlite = {**os.environ, "DIGITS_DATA_DIR": str(tmp_path / "sqlite-instance")}
    on_sqlite.pop("DATABASE_URL", None)
    _manage(on_sqlite, "restore", str(tmp_path / "here.zip"))
    assert _snapshot_of(on_sqlite) == before
    _manage(on_sqlite, "backup", str(tmp_path / "there.zip"))
    back = instance_env(tmp_path / "back-again")
    _manage(back, "restore", str(tmp_path / "there.zip"))
    # then both hold exactly what this one held, and the restored instance goes on
    # numbering where the backup left off (PostgreSQL's sequences were reset)
    assert _snapshot_of(back) == before
    code = (
        "from classifier.registry import BOOTSTRAP_DIR, register_directory; "
        "print(register_directory(BOOTSTRAP_DIR, activate=False, note='after').version)"
    )
    assert _manage(back, "shell", "-c", code).splitlines()[-1] == str(
        max(map(int, before["versions"])) + 1
    )


def test_a_bad_crc_in_the_zip_is_a_one_line_error_and_nothing_changes(active_model, tmp_path):
    call_command("backup", str(tmp_path / "b.zip"), stdout=io.StringIO())
    import struct

    data = bytearray((tmp_path / "b.zip").read_bytes())
    with zipfile.ZipFile(tmp_path / "b.zip") as archive:
        item = next(i for i in archive.infolist() if i.filename.startswith("files/part-"))
    # flip a byte inside the stored part's data (past its local header, whose name and
    # extra field lengths it gives): its CRC no longer matches
    name_length, extra_length = struct.unpack("<HH", data[item.header_offset + 26 :][:4])
    start = item.header_offset + 30 + name_length + extra_length + 10
    data[start] ^= 0xFF
    (tmp_path / "crc.zip").write_bytes(bytes(data))
    ModelVersion.objects.all().delete()
    with pytest.raises(CommandError, match="damaged in the backup") as raised:
        call_command("restore", str(tmp_path / "crc.zip"), stdout=io.StringIO())
    assert "\n" not in str(raised.value)
    assert ModelVersion.objects.count() == 0


def test_a_run_that_was_training_when_backed_up_is_restored_as_interrupted(
    active_model, settings, tmp_path
):
    from training.models import TrainingRun

    running = TrainingRun.objects.create(preset="finetune")
    running.claim("elsewhere:1")
    queued = TrainingRun.objects.create(preset="quick")
    call_command("backup", str(tmp_path / "b.zip"), stdout=io.StringIO())
    TrainingRun.objects.all().delete()
    ModelVersion.objects.all().delete()
    settings.MEDIA_ROOT = tmp_path / "fresh-media"
    call_command("restore", str(tmp_path / "b.zip"), stdout=io.StringIO())
    for run in (running, queued):
        run.refresh_from_db()
        assert run.status == TrainingRun.Status.FAILED and run.finished_at is not None
        assert run.error.startswith("Interrupted")


def test_the_database_is_checksummed_and_an_altered_one_is_refused(
    active_model, canvas_png, tmp_path
):
    """A fixture changed after the backup (the zip's own CRC made to match, as any
    tool rewriting the archive would) is refused by the manifest's checksum, before
    the database is touched."""
    import json

    Drawing.objects.add(NewDrawing(canvas_png(6), 6))
    call_command("backup", str(tmp_path / "b.zip"), stdout=io.StringIO())
    with zipfile.ZipFile(tmp_path / "b.zip") as archive:
        manifest = json.loads(archive.read("manifest.json"))
        fixture = archive.read("database.jsonl")
    assert manifest["database"] == {
        "name": "database.jsonl",
        "sha256": hashlib.sha256(fixture).hexdigest(),
        "bytes": len(fixture),
    }
    altered = tmp_path / "altered.zip"
    with zipfile.ZipFile(tmp_path / "b.zip") as source, zipfile.ZipFile(altered, "w") as target:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename == "database.jsonl":
                data = data.replace(b'"label": 6', b'"label": 9')
                assert data != fixture
            target.writestr(item, data)
    Drawing.objects.all().delete()
    ModelVersion.objects.all().delete()
    with pytest.raises(CommandError, match=r"database\.jsonl is damaged"):
        call_command("restore", str(altered), stdout=io.StringIO())
    assert not Drawing.objects.exists() and not ModelVersion.objects.exists()


def test_a_restore_that_stopped_part_way_goes_on_where_it_stopped(
    active_model, canvas_png, settings, tmp_path, monkeypatch
):
    """Killed after storing some files: run again, it keeps those (same checksum),
    writes the rest and one that was left damaged, and loads the database."""
    for label in range(6):
        Drawing.objects.add(NewDrawing(canvas_png(label), label))
    before = snapshot()
    call_command("backup", str(tmp_path / "b.zip"), stdout=io.StringIO())
    emptied(settings, tmp_path)
    # as a killed restore leaves it: half the files stored, the last one cut short
    files = backed_up(tmp_path / "b.zip")
    names = sorted(files)
    stored = names[: len(names) // 2]
    for name in stored:
        default_storage.save(name, io.BytesIO(files[name]))
    cut = stored[-1]
    path = default_storage.path(cut)
    with open(path, "r+b") as handle:
        handle.truncate(10)
    saved = []
    storage = default_storage._wrapped  # the instance behind the lazy one
    original = storage.save

    def counting_save(name, content, *args, **kwargs):
        saved.append(name)
        return original(name, content, *args, **kwargs)

    monkeypatch.setattr(storage, "save", counting_save)
    call_command("restore", str(tmp_path / "b.zip"), stdout=io.StringIO())
    assert sorted(saved) == sorted([*names[len(names) // 2 :], cut])
    assert snapshot() == before


def test_drawings_come_back_in_batches_with_every_value_and_the_numbering_goes_on(
    active_model, canvas_png, settings, tmp_path, monkeypatch, django_user_model
):
    """The drawings go in a batch at a time, not through ``loaddata``: every column
    as it was (``created_at`` not stamped anew, who sent it, the model's guess and its
    version, strokes, fingerprint), the counts made again after the load (its
    triggers off meanwhile, back after), and a drawing added afterwards numbered
    after the restored ones."""
    from datetime import timedelta

    from django.utils import timezone

    from collector import counts
    from operations import backups

    someone = django_user_model.objects.create_user("ana", password="a-long-password-1")
    for label in range(8):
        Drawing.objects.add(NewDrawing(canvas_png(label), label, contributor=someone))
    for n, drawing in enumerate(Drawing.objects.order_by("pk")):
        Drawing.objects.filter(pk=drawing.pk).update(
            created_at=timezone.now() - timedelta(days=30 + n),
            strokes=[[[10 + n, 20, 0], [30, 40 + n, 16]]],
            predicted_label=(drawing.label + n % 2) % 10,
            predicted_confidence=0.5 + n / 100,
            model_version=active_model,
            status="approved" if n % 3 else "rejected",
        )

    def rows() -> list[dict]:
        found = []
        for drawing in Drawing.objects.order_by("pk"):
            # every column (model_to_dict would leave out the ones not editable)
            row = {f.attname: getattr(drawing, f.attname) for f in Drawing._meta.concrete_fields}
            row["image"] = drawing.image.name
            row["contributor_id"] = drawing.contributor.username if drawing.contributor else None
            row["model_version_id"] = (
                drawing.model_version.version if drawing.model_version else None
            )
            row["fingerprint"] = bytes(row["fingerprint"] or b"")
            # Django's JSON keeps times to the millisecond (loaddata's backups did too)
            row["created_at"] = row["created_at"].replace(
                microsecond=row["created_at"].microsecond // 1000 * 1000
            )
            found.append(row)
        return found

    before, totals = rows(), sorted(counts.rows())
    call_command("backup", str(tmp_path / "b.zip"), stdout=io.StringIO())
    emptied(settings, tmp_path)
    monkeypatch.setattr(backups, "LOAD_BATCH", 3)
    inserts = []
    real_insert = Drawing._base_manager._insert

    def counting_insert(objs, *args, **kwargs):
        inserts.append(len(objs))
        return real_insert(objs, *args, **kwargs)

    monkeypatch.setattr(Drawing._base_manager, "_insert", counting_insert)
    call_command("restore", str(tmp_path / "b.zip"), stdout=io.StringIO())
    assert inserts == [3, 3, 2]  # in batches, every drawing once
    assert rows() == before
    assert sorted(counts.rows()) == totals
    new, _ = Drawing.objects.add(NewDrawing(canvas_png(3, index=5), 3))
    assert new.pk > max(row["id"] for row in before)
    assert counts.total() == len(before) + 1  # the counting triggers are back


def test_files_travel_in_parts_and_backups_from_before_parts_still_restore(
    active_model, canvas_png, settings, tmp_path, monkeypatch
):
    """Stored files go into parts of PART_FILES (a part's directory and checksums are
    all that is in memory at a time, at any size); a backup from before parts, every
    file under ``files/`` with its checksum in the top manifest, restores as well."""
    import json

    from operations import backups

    for label in range(7):
        Drawing.objects.add(NewDrawing(canvas_png(label), label))
    before = snapshot()
    monkeypatch.setattr(backups, "PART_FILES", 3)
    out = io.StringIO()
    call_command("backup", str(tmp_path / "b.zip"), stdout=out)
    files = backed_up(tmp_path / "b.zip")
    assert set(files) == set(backups.stored_names()) and len(files) > 7
    with zipfile.ZipFile(tmp_path / "b.zip") as archive:
        manifest = json.loads(archive.read("manifest.json"))
        parts = [n for n in archive.namelist() if n.startswith("files/")]
    assert [p["name"] for p in manifest["parts"]] == parts
    assert [p["files"] for p in manifest["parts"]] == [3] * (len(files) // 3) + (
        [len(files) % 3] if len(files) % 3 else [])  # fmt: skip
    assert manifest["files"] == len(files) and f"{len(files)} files" in out.getvalue()
    # the same backup as an instance wrote it before parts
    legacy = tmp_path / "legacy.zip"
    with zipfile.ZipFile(tmp_path / "b.zip") as source, zipfile.ZipFile(legacy, "w") as target:
        target.writestr("database.jsonl", source.read("database.jsonl"))
        for name, data in files.items():
            target.writestr(f"files/{name}", data)
        digests = {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}
        target.writestr("manifest.json", json.dumps(
            {"files": digests, "database": manifest["database"]}))  # fmt: skip
    for backup in (tmp_path / "b.zip", legacy):
        emptied(settings, tmp_path / backup.stem)
        out = io.StringIO()
        call_command("restore", str(backup), stdout=out)
        assert snapshot() == before
        assert f"{len(files)} files" in out.getvalue()
