"""The contribute and dataset pages, drawing images, and the admin's curation tools."""

from __future__ import annotations

from django.urls import reverse

from collector.models import Drawing, NewDrawing, SplitCounter


def test_contribute_asks_for_the_digit_with_fewest_drawings(client, db, canvas_png):
    for label in range(10):
        if label != 6:
            Drawing.objects.add(NewDrawing(canvas_png(label), label))
    response = client.get("/contribute/")
    assert response.status_code == 200
    assert response.context["target"] == 6
    assert b'id="target-digit" class="target">6<' in response.content


def test_dataset_page_shows_counts_and_only_approved_thumbnails(client, db, canvas_png):
    approved, _ = Drawing.objects.add(NewDrawing(canvas_png(2), 2, status="approved"))
    pending, _ = Drawing.objects.add(NewDrawing(canvas_png(5), 5))
    page = client.get("/dataset/")
    assert page.status_code == 200
    assert reverse("drawing-image", args=[approved.sha256]).encode() in page.content
    assert reverse("drawing-image", args=[pending.sha256]).encode() not in page.content
    image = client.get(reverse("drawing-image", args=[approved.sha256]))
    assert image.status_code == 200 and image["Content-Type"] == "image/png"
    assert image["X-Content-Type-Options"] == "nosniff"
    assert client.get(reverse("drawing-image", args=[pending.sha256])).status_code == 404


def test_admin_lists_thumbnails_and_finds_likely_mislabels(staff_client, canvas_png):
    from collector.models import Prediction

    right, _ = Drawing.objects.add(
        NewDrawing(canvas_png(4), 4, prediction=Prediction(4, 0.99, None))
    )
    sure_wrong, _ = Drawing.objects.add(
        NewDrawing(canvas_png(7), 1, prediction=Prediction(7, 0.97, None))
    )
    unsure_wrong, _ = Drawing.objects.add(
        NewDrawing(canvas_png(3), 5, prediction=Prediction(3, 0.55, None))
    )
    page = staff_client.get("/admin/collector/drawing/?disagrees=yes")
    assert page.status_code == 200
    listed = list(page.context["cl"].result_list)
    assert listed == [sure_wrong, unsure_wrong]
    assert b'<img src="/drawings/' in page.content
    assert staff_client.get(reverse("drawing-image", args=[right.sha256])).status_code == 200


def test_admin_bulk_actions_keep_the_split(staff_client, canvas_png):
    drawing, _ = Drawing.objects.add(NewDrawing(canvas_png(7), 1))
    split = drawing.split
    staff_client.post(
        "/admin/collector/drawing/",
        {"action": "relabel_as_7", "_selected_action": [drawing.pk]},
    )
    staff_client.post(
        "/admin/collector/drawing/", {"action": "approve", "_selected_action": [drawing.pk]}
    )
    drawing.refresh_from_db()
    assert (drawing.label, drawing.split, drawing.status) == (7, split, "approved")
    assert getattr(SplitCounter.objects.get(label=7), split) == 1
    assert getattr(SplitCounter.objects.get(label=1), split) == 0


def test_admin_exports_are_built_in_the_background_and_downloaded_by_staff(
    client, staff_client, canvas_png, eager_celery, django_capture_on_commit_callbacks
):
    import csv
    import io
    import zipfile

    from collector.models import DatasetExport

    png = canvas_png(0)
    drawing, _ = Drawing.objects.add(NewDrawing(png, 0))
    # a GET changes nothing; a POST queues the export and shows the exports page
    assert staff_client.get("/admin/collector/drawing/export/zip/").status_code == 405
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post("/admin/collector/drawing/export/zip/")
    assert response.status_code == 302
    assert response["Location"] == "/admin/collector/datasetexport/"
    export = DatasetExport.objects.get()
    assert (export.status, export.drawings, export.done, export.total) == ("ready", 1, 1, 1)
    page = staff_client.get("/admin/collector/datasetexport/")
    link = f"/admin/collector/datasetexport/{export.pk}/download/"
    assert link.encode() in page.content and b'http-equiv="refresh"' not in page.content
    download = staff_client.get(link)
    assert download.status_code == 200
    assert download["Content-Disposition"].startswith('attachment; filename="digits-dataset')
    # the download is the dataset: the drawing as sent, and its row in the manifest
    archive = zipfile.ZipFile(io.BytesIO(b"".join(download.streaming_content)))
    assert archive.read(f"drawings/{drawing.sha256}.png") == png
    rows = list(csv.DictReader(io.TextIOWrapper(archive.open("manifest.csv"), "utf-8")))
    assert [(r["sha256"], r["label"], r["split"]) for r in rows] == [
        (drawing.sha256, "0", drawing.split)
    ]
    client.logout()
    anonymous = client.get(link)
    assert anonymous.status_code == 302 and "/admin/login/" in anonymous["Location"]


def test_an_export_being_built_shows_progress_and_a_failed_one_says_why(staff_client, db):
    from collector import exports
    from collector.models import DatasetExport

    building = DatasetExport.objects.create(fmt="npz", status="running", done=250, total=7500)
    page = staff_client.get("/admin/collector/datasetexport/")
    assert b"250 of 7,500 drawings read" in page.content
    assert b'http-equiv="refresh"' in page.content  # it follows itself
    building.delete()
    failed = DatasetExport.objects.create(fmt="npz")
    assert exports.build(failed.pk) == "failed"  # no approved drawings to export
    failed.refresh_from_db()
    assert "No drawings to export" in failed.error
    assert (
        staff_client.get(f"/admin/collector/datasetexport/{failed.pk}/download/").status_code == 404
    )


def test_dataset_page_counts_contributed_and_imported_apart(client, db, canvas_png):
    Drawing.objects.add(NewDrawing(canvas_png(1), 1))
    Drawing.objects.add(NewDrawing(canvas_png(2), 2, source="import:pendigits"))
    Drawing.objects.add(NewDrawing(canvas_png(3), 3, source="import:folder"))
    page = client.get("/dataset/").content.decode()
    assert '<strong id="dataset-contributed">1</strong> drawn here' in page
    assert '<strong id="dataset-imported">2</strong> imported' in page
    stats = client.get("/api/dataset/stats/").json()
    assert (stats["total"], stats["contributed"], stats["imported"]) == (3, 1, 2)


def test_recently_approved_is_ordered_by_approval(staff_client, canvas_png):
    older, _ = Drawing.objects.add(NewDrawing(canvas_png(4), 4))
    newer, _ = Drawing.objects.add(NewDrawing(canvas_png(5), 5))
    for drawing in (newer, older):  # the older drawing is approved last
        staff_client.post(
            "/admin/collector/drawing/",
            {"action": "approve", "_selected_action": [drawing.pk]},
        )
    page = staff_client.get("/dataset/").content.decode()
    first = page.index(reverse("drawing-image", args=[older.sha256]))
    second = page.index(reverse("drawing-image", args=[newer.sha256]))
    assert first < second, "the drawing approved last comes first"
    older.refresh_from_db()
    assert older.approved_at is not None
    staff_client.post(
        "/admin/collector/drawing/", {"action": "reject", "_selected_action": [older.pk]}
    )
    older.refresh_from_db()
    assert older.approved_at is None


def test_the_export_buttons_say_how_many_drawings_each_holds_and_why(staff_client, canvas_png):
    for label in range(4):
        Drawing.objects.add(NewDrawing(canvas_png(label), label))
    Drawing.objects.filter(label__lt=1).update(status="approved")
    page = staff_client.get("/admin/collector/drawing/").content.decode()
    assert "Export zip (4)" in page and "Export kaggle-csv (1)" in page
    assert "Export ndjson (0)" in page  # none of these has strokes
    assert "every drawing of every status" in page and "approved drawings only" in page
