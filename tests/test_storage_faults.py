"""Faults that used to leak: a full disk, a killed worker, files others can read,
a path that opens anything, a log that cannot be written."""

from __future__ import annotations

import errno
import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.core.files.storage import default_storage
from django.core.management import call_command

from collector.models import Drawing, NewDrawing, stored_intact
from training import config as run_config
from training.sources import drawings as drawing_source
from training.sources import kaggle as kaggle_source

from .conftest import data_url, instance_env

ROOT = Path(__file__).resolve().parent.parent


def contribute(client, png: bytes, label: int):
    return client.post(
        "/api/drawings/",
        json.dumps({"image": data_url(png), "label": label}),
        content_type="application/json",
    )


class DiskFull:
    """Writes fail after ``after`` bytes, as on a full disk."""

    def __init__(self, monkeypatch, after: int = 100):
        self.after = after
        real_fdopen = os.fdopen

        def fdopen(fd, mode="r", *args, **kwargs):
            handle = real_fdopen(fd, mode, *args, **kwargs)
            if "w" not in mode:
                return handle
            budget = {"left": self.after}
            real_write = handle.write

            def write(data):
                if len(data) > budget["left"]:
                    real_write(data[: budget["left"]])
                    budget["left"] = 0
                    raise OSError(errno.ENOSPC, "No space left on device")
                budget["left"] -= len(data)
                return real_write(data)

            handle.write = write
            return handle

        monkeypatch.setattr(os, "fdopen", fdopen)


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def test_a_full_disk_leaves_no_file_and_the_next_upload_stores_it_whole(
    client, active_model, canvas_png, monkeypatch, settings
):
    png = canvas_png(4)
    with monkeypatch.context() as patch:
        DiskFull(patch, after=100)
        refused = contribute(client, png, 4)
    # Said as it is: a full disk (507), not "busy" or "try again in a moment".
    assert refused.status_code == 507 and refused.json()["code"] == "storage_full"
    assert (
        "disk is full" in refused.json()["error"] and "nothing was saved" in refused.json()["error"]
    )
    assert Drawing.objects.count() == 0
    drawings = Path(settings.MEDIA_ROOT) / "drawings"
    assert files_under(drawings) == [], "no truncated file, no temporary one"
    stored = contribute(client, png, 4)
    assert stored.status_code == 201
    drawing = Drawing.objects.get()
    assert stored_intact(drawing.image.name, drawing.sha256)


def test_a_database_on_a_full_disk_says_so(client, active_model, canvas_png, monkeypatch):
    from django.db import OperationalError

    def full(self, *args, **kwargs):
        raise OperationalError("database or disk is full")

    monkeypatch.setattr(Drawing, "save", full)
    refused = contribute(client, canvas_png(5), 5)
    assert refused.status_code == 507 and refused.json()["code"] == "storage_full"
    assert Drawing.objects.count() == 0


def test_a_run_on_a_full_disk_fails_saying_so(active_model, tiny_run_config, monkeypatch):
    from training import runs, trainer
    from training.models import TrainingRun

    def full(config, out_dir, **kwargs):
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "model.keras").write_bytes(b"partial")
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError as exc:  # as Keras does: its own error, the OSError its cause
            raise RuntimeError("Unable to synchronously create file") from exc

    monkeypatch.setattr(trainer, "train", full)
    run = TrainingRun.objects.create(**tiny_run_config)
    assert runs.execute(run.pk) == "failed"
    run.refresh_from_db()
    assert run.status == "failed" and run.error.startswith("The disk is full"), run.error[:200]
    assert not (Path(settings_data_dir()) / "runs" / f"run-{run.pk}").exists()


def settings_data_dir():
    from django.conf import settings

    return settings.DIGITS_DATA_DIR


def test_a_file_that_does_not_match_its_name_is_replaced(client, active_model, canvas_png):
    png = canvas_png(6)
    import hashlib

    name = f"drawings/{hashlib.sha256(png).hexdigest()[:2]}/{hashlib.sha256(png).hexdigest()}.png"
    Path(default_storage.path(name)).parent.mkdir(parents=True)
    Path(default_storage.path(name)).write_bytes(png[:50])  # what a crash once left
    assert contribute(client, png, 6).status_code == 201
    assert Path(default_storage.path(name)).read_bytes() == png


def test_training_skips_and_reports_a_damaged_drawing(active_model, canvas_png, settings):
    settings.DIGITS_AUTO_APPROVE = True
    drawings = [
        Drawing.objects.add(NewDrawing(canvas_png(k % 10, k // 10), k % 10))[0] for k in range(12)
    ]
    broken, gone = drawings[0], drawings[1]
    Path(default_storage.path(broken.image.name)).write_bytes(b"\x89PNG truncated")
    default_storage.delete(gone.image.name)
    skipped: list = []
    loaded = drawing_source.load_drawings(skipped=skipped)
    assert sum(len(images) for images in loaded.values()) == 10
    assert {pk for pk, _ in skipped} == {broken.pk, gone.pk}
    assert any("hash" in why for _, why in skipped)


def test_a_log_that_cannot_be_written_is_not_a_500(client, active_model, canvas_png, monkeypatch):
    """Every handler's stream fails (a full disk under the log file)."""
    import logging

    class Full:
        def write(self, text):
            raise OSError(errno.ENOSPC, "No space left on device")

        def flush(self):
            raise OSError(errno.ENOSPC, "No space left on device")

    # The app's own handlers (the settings' console), not pytest's capturing ones.
    handlers = [h for h in logging.getLogger().handlers if type(h) is logging.StreamHandler]
    assert handlers
    for handler in handlers:
        monkeypatch.setattr(handler, "stream", Full())
    response = client.post(
        "/api/predict/", json.dumps({"image": "not a data url"}), content_type="application/json"
    )
    assert response.status_code == 400  # and Django logged a warning, into the void
    good = client.post(
        "/api/predict/",
        json.dumps({"image": data_url(canvas_png(2))}),
        content_type="application/json",
    )
    assert good.status_code == 200


# -- check_storage ---------------------------------------------------------------------


def run_check(*args: str) -> str:
    from io import StringIO

    out = StringIO()
    call_command("check_storage", *args, stdout=out)
    return out.getvalue()


def test_check_storage_finds_orphans_and_damaged_rows_and_fixes_what_it_may(
    active_model, canvas_png, settings
):
    kept = Drawing.objects.add(NewDrawing(canvas_png(1), 1))[0]
    damaged = Drawing.objects.add(NewDrawing(canvas_png(2), 2))[0]
    Path(default_storage.path(damaged.image.name)).write_bytes(b"garbage")
    # What a worker killed between file and row leaves: a whole file, no row.
    orphan = default_storage.save("drawings/ff/" + "f" * 64 + ".png", canvas_png_file(canvas_png))
    fresh = default_storage.save("drawings/ee/" + "e" * 64 + ".png", canvas_png_file(canvas_png))
    hour_ago = time.time() - 2 * 3600
    os.utime(default_storage.path(orphan), (hour_ago, hour_ago))

    report = run_check()
    assert "1 orphan file(s), no row points at them" in report and orphan in report
    assert "younger than the grace period" in report and fresh in report
    assert f"drawing {damaged.pk}" in report and "damaged" in report
    assert default_storage.exists(orphan)  # only --fix removes

    fixed = run_check("--fix")
    assert "1 removed orphan file(s)" in fixed
    assert not default_storage.exists(orphan) and default_storage.exists(fresh)
    assert default_storage.exists(kept.image.name)
    assert Drawing.objects.count() == 2  # rows are listed, never deleted


def canvas_png_file(canvas_png):
    from django.core.files.base import ContentFile

    return ContentFile(canvas_png(9))


def test_make_run_checks_storage_before_it_serves():
    makefile = (ROOT / "Makefile").read_text()
    run = makefile[makefile.index("\nrun:") :].split("\n\n")[0]
    assert run.index("check_storage --fix") < run.index("manage.py serve")
    # after everything that writes under the data directory (collectstatic's files
    # would otherwise be left readable by others)
    assert run.index("collectstatic") < run.index("check_storage --fix")


# -- files on disk ------------------------------------------------------------------------


def test_everything_the_app_writes_is_owner_only(tmp_path):
    """A fresh data directory after migrate, a model, a contribution and a log line:
    the database (and its WAL while open), drawings, artifacts, the secret key."""
    data = tmp_path / "data"
    env = instance_env(data)
    env.pop("DJANGO_SECRET_KEY", None)
    manage = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "-v0"], env=env, check=True, capture_output=True)
    subprocess.run([*manage, "ensure_model"], env=env, check=True, capture_output=True)
    code = (
        "import os, stat, pathlib\n"
        "from django.db import connection\n"
        "from collector.models import Drawing\n"
        "with connection.cursor() as c: c.execute('CREATE TABLE IF NOT EXISTS t (x integer)'); "
        "c.execute('INSERT INTO t VALUES (1)')\n"
        "root = pathlib.Path(os.environ['DIGITS_DATA_DIR'])\n"
        "print('\\n'.join(f'{oct(stat.S_IMODE(p.stat().st_mode))} {p}' "
        "for p in [root, *root.rglob('*')]))\n"
    )
    listing = (
        subprocess.run(
            [*manage, "shell", "-c", code], env=env, check=True, capture_output=True, text=True
        )
        .stdout.strip()
        .splitlines()
    )
    paths = {
        path: mode
        for mode, _, path in (line.partition(" ") for line in listing)
        if mode.startswith("0o")
    }
    if "DATABASE_URL" not in env:  # SQLite: the database is a file of ours
        assert any(p.endswith("db.sqlite3-wal") for p in paths), "the WAL was open while listed"
    assert any("/media/models/" in p for p in paths) and any(
        p.endswith("secret_key") for p in paths
    )
    loose = {p: mode for p, mode in paths.items() if int(mode, 8) & 0o077}
    assert not loose


def test_check_storage_fix_closes_a_data_directory_made_before(settings, db):
    data = Path(settings.DIGITS_DATA_DIR)
    loose = data / "old-run.log"
    loose.write_text("written before the rule")
    loose.chmod(0o644)
    report = run_check()
    assert str(loose) in report
    run_check("--fix")
    assert stat.S_IMODE(loose.stat().st_mode) == 0o600
    loose.unlink()


# -- paths staff name ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "path, why",
    [
        ("/dev/zero", "Only files under the datasets folder"),
        ("/etc/passwd", "Only files under the datasets folder"),
        ("../../etc/passwd", "Only files under the datasets folder"),
        ("missing.csv", "was not found"),
        ("a-folder", "not a regular file"),
        ("fifo.csv", "not a regular file"),
        ("link-out.csv", "Only files under the datasets folder"),
        ("huge.csv", "the limit is"),
    ],
)
def test_a_dataset_path_is_only_a_regular_file_in_the_datasets_folder(
    settings, tmp_path, path, why
):
    root = tmp_path / "datasets"
    root.mkdir()
    (root / "a-folder").mkdir()
    os.mkfifo(root / "fifo.csv")
    (root / "link-out.csv").symlink_to("/dev/zero")
    (root / "huge.csv").write_bytes(b"x" * 2000)
    settings.DIGITS_DATASETS_DIR = root
    settings.DIGITS_MAX_DATASET_BYTES = 1000
    with pytest.raises(run_config.ConfigError) as refused:
        run_config.TrainConfig(sources=("kaggle",), kaggle_csv=path)
    assert why in refused.value.problems["kaggle_csv"]


def test_the_worker_checks_the_path_again_when_it_opens_it(settings, tmp_path):
    """A file swapped for a link to a device after the run was configured."""
    from collector.formats import DatasetError

    root = tmp_path / "datasets"
    root.mkdir()
    (root / "train.csv").symlink_to("/dev/zero")
    settings.DIGITS_DATASETS_DIR = root
    with pytest.raises(DatasetError, match="Only files under the datasets folder"):
        kaggle_source.load_kaggle_csv("train.csv")
