"""The admin's import page: staff upload a file in any format the import command
reads, a background worker imports it, and the page shows the progress and then
what was added, already there and refused (and why)."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command

from audit.models import AuditEvent
from collector.formats import kaggle_csv
from collector.models import DatasetImport, Drawing, NewDrawing

ADD = "/admin/collector/datasetimport/add/"


@pytest.fixture
def start(staff_client, eager_celery, django_capture_on_commit_callbacks):
    """Upload a file as staff would; the (eager) worker runs the import at commit."""

    def upload(name: str, content: bytes, kind: str, **fields) -> DatasetImport:
        with django_capture_on_commit_callbacks(execute=True):
            response = staff_client.post(
                ADD, {"file": SimpleUploadedFile(name, content), "kind": kind, **fields}
            )
        assert response.status_code == 302, response.content[:2000]
        return DatasetImport.objects.latest("id")

    return upload


def _folder_zip(canvas_png) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("digits/7/a.png", canvas_png(7))
        archive.writestr("digits/3/b.png", canvas_png(3))
        archive.writestr("digits/3/b-again.png", canvas_png(3))  # the same picture
        archive.writestr("digits/x/c.png", canvas_png(1))  # not a digit's folder
        archive.writestr("digits/5/d.png", b"not a png at all")
    return out.getvalue()


def test_a_zipped_folder_is_imported_in_the_background_with_a_report(
    start, staff_client, canvas_png
):
    job = start("scans.zip", _folder_zip(canvas_png), "folder")
    assert job.status == "done" and (job.total, job.done) == (5, 5)
    assert (job.added, job.skipped, job.refused) == (2, 1, 2)
    assert any("not a digit" in reason for reason in job.refusals)
    assert job.requested_by.username == "admin"
    event = AuditEvent.objects.get(action="imported")
    assert event.subject == "2 drawings from scans.zip" and event.actor_name == "admin"
    assert (event.details["skipped"], event.details["refused"]) == (1, 2)
    assert sorted(Drawing.objects.values_list("label", "status", "source")) == [
        (3, "approved", "import:folder"),
        (7, "approved", "import:folder"),
    ]
    listing = staff_client.get("/admin/collector/datasetimport/")
    assert listing.status_code == 200 and b"scans.zip" in listing.content
    report = staff_client.get(f"/admin/collector/datasetimport/{job.pk}/change/")
    assert b"2 added, 1 already in the dataset, 2 refused" in report.content
    assert b"not a digit" in report.content
    # the same file again adds nothing
    again = start("scans.zip", _folder_zip(canvas_png), "folder", drawing_status="pending")
    assert (again.added, again.skipped, again.refused) == (0, 3, 2)
    # a finished import's record can go, and its uploaded file with it
    stored = again.file.name
    assert default_storage.exists(stored)
    staff_client.post(f"/admin/collector/datasetimport/{again.pk}/delete/", {"post": "yes"})
    assert not DatasetImport.objects.filter(pk=again.pk).exists()
    assert not default_storage.exists(stored)


def test_a_kaggle_csv_and_an_ndjson_export_are_imported(start, tmp_path, canvas_png, db):
    rng = np.random.default_rng(0)
    images = np.zeros((3, 28, 28), np.uint8)
    images[:, 6:22, 12:16] = 255  # three upright bars
    images[2] = rng.integers(0, 255, (28, 28))  # and one that differs
    out = io.StringIO()
    kaggle_csv.write(out, images, np.array([1, 1, 8]))
    job = start("train.csv", out.getvalue().encode(), "kaggle", drawing_status="pending")
    assert (job.status, job.added, job.skipped) == ("done", 2, 1)
    assert set(Drawing.objects.values_list("status", "source")) == {("pending", "import:kaggle")}

    # an ndjson export of drawings with strokes keeps their labels and statuses
    from classifier import canvas

    Drawing.objects.all().delete()
    strokes = canvas.parse_strokes([[[60, 40, 0], [70, 200, 90]]])
    Drawing.objects.add(NewDrawing(canvas.render_canvas_png(strokes), 1, strokes=strokes))
    call_command("export_dataset", "--format", "ndjson", str(tmp_path / "d.ndjson"), verbosity=0)
    Drawing.objects.all().delete()
    job = start("d.ndjson", (tmp_path / "d.ndjson").read_bytes(), "ndjson")
    assert (job.added, job.skipped, job.refused) == (1, 0, 0)
    assert Drawing.objects.get().status == "pending" and Drawing.objects.get().strokes


def test_a_file_that_is_not_its_format_fails_with_one_clear_line(start, staff_client):
    job = start("export.zip", b"PK\x03\x04 this is no zip", "zip")
    assert job.status == "failed" and job.error.startswith("Cannot read export.zip as zip")
    assert Drawing.objects.count() == 0
    listing = staff_client.get("/admin/collector/datasetimport/")
    assert b"Cannot read export.zip" in listing.content


def test_the_list_follows_an_import_that_is_still_running(staff_client, staff_user, db):
    job = DatasetImport.objects.create(
        kind="zip", file=SimpleUploadedFile("big.zip", b"PK"), requested_by=staff_user
    )
    assert job.claim()
    job.report(1200, 50_000)
    listing = staff_client.get("/admin/collector/datasetimport/")
    assert b"1,200 of 50,000 drawings read" in listing.content
    assert b'http-equiv="refresh"' in listing.content  # the page reloads itself
    # watched, never edited
    assert (
        staff_client.post(f"/admin/collector/datasetimport/{job.pk}/change/", {}).status_code == 403
    )


def test_only_staff_may_import(client, db, canvas_png):
    response = client.post(ADD, {"file": SimpleUploadedFile("a.zip", b"PK"), "kind": "zip"})
    assert response.status_code == 302 and "/login/" in response["Location"]
    assert DatasetImport.objects.count() == 0


@pytest.mark.browser
def test_staff_import_a_file_from_the_admin_page(staff_browser, eager_celery, canvas_png, tmp_path):
    page, url = staff_browser
    upload = tmp_path / "scans.zip"
    upload.write_bytes(_folder_zip(canvas_png))
    page.goto(f"{url}/admin/collector/datasetimport/add/")
    page.set_input_files("input[name=file]", str(upload))
    page.select_option("select[name=kind]", "folder")
    page.click("input[name=_save]")
    page.wait_for_selector("text=The import is queued")
    page.reload()  # the worker has finished: the list says what it did
    row = page.locator("#result_list tbody tr").first
    assert "done: 5 drawings read" in row.inner_text()
    page.goto(f"{url}/admin/collector/datasetimport/{DatasetImport.objects.get().pk}/change/")
    assert "2 added, 1 already in the dataset, 2 refused" in page.content()
    from pathlib import Path

    from django.conf import settings

    shots = Path(settings.DIGITS_DATA_DIR) / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=shots / "admin-import.png", full_page=True)
