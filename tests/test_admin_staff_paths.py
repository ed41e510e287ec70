"""What staff hit in the admin: adding a drawing, the image link, deleting model
versions, promoting with a reason and a confirmation, per-class metrics."""

from __future__ import annotations

import io

from django.core.files.storage import default_storage
from django.urls import reverse
from PIL import Image

from classifier.models import ModelVersion
from classifier.registry import BOOTSTRAP_DIR, register_directory
from collector.models import Drawing, NewDrawing


def png_upload(data: bytes, name: str = "digit.png"):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, data, content_type="image/png")


# --- Drawings --------------------------------------------------------------------


def test_add_drawing_page_opens_and_stores_through_add_drawing(staff_client, canvas_png):
    page = staff_client.get("/admin/collector/drawing/add/")
    assert page.status_code == 200
    assert b'name="upload"' in page.content and b'enctype="multipart/form-data"' in page.content
    response = staff_client.post(
        "/admin/collector/drawing/add/",
        {"upload": png_upload(canvas_png(4)), "label": "4", "status": "approved"},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    drawing = Drawing.objects.get()
    assert (drawing.label, drawing.status, drawing.source) == (4, "approved", "admin")
    assert drawing.split in {"train", "val", "test"} and drawing.fingerprint
    assert default_storage.exists(drawing.image.name)
    assert drawing.contributor.username == "admin"


def test_add_drawing_refuses_what_the_api_refuses(staff_client):
    blank = io.BytesIO()
    Image.new("L", (64, 64), 255).save(blank, "PNG")
    for data, fragment in [
        (blank.getvalue(), b"Nothing is drawn"),
        (b"not an image at all", b"image"),
    ]:
        response = staff_client.post(
            "/admin/collector/drawing/add/", {"upload": png_upload(data), "label": "3"}
        )
        assert response.status_code == 200 and fragment in response.content
    assert not Drawing.objects.exists()


def test_adding_a_picture_already_stored_says_so(staff_client, canvas_png):
    Drawing.objects.add(NewDrawing(canvas_png(2), 2))
    response = staff_client.post(
        "/admin/collector/drawing/add/",
        {"upload": png_upload(canvas_png(2)), "label": "5", "status": "pending"},
        follow=True,
    )
    assert response.status_code == 200
    assert b"already in the dataset (labelled 2)" in response.content
    assert Drawing.objects.get().label == 2


def test_a_drawings_image_link_opens_the_image(staff_client, canvas_png):
    drawing, _ = Drawing.objects.add(NewDrawing(canvas_png(8), 8))
    page = staff_client.get(f"/admin/collector/drawing/{drawing.pk}/change/")
    assert page.status_code == 200
    link = reverse("drawing-image", args=[drawing.sha256])
    assert f'href="{link}"'.encode() in page.content
    assert b'href="/media/' not in page.content
    image = staff_client.get(link)
    assert image.status_code == 200 and image["Content-Type"] == "image/png"


# --- Model versions -------------------------------------------------------------


def _second_version(status: str = "candidate", reasons: list[str] | None = None) -> ModelVersion:
    version = register_directory(BOOTSTRAP_DIR, activate=False, note="another")
    if status == "rejected":
        version.reject(reasons or ["MNIST test 39.00% < 99.00%"])
    return version


def test_the_served_version_cannot_be_deleted(staff_client, active_model):
    page = staff_client.get(f"/admin/classifier/modelversion/{active_model.pk}/delete/")
    assert page.status_code == 200
    assert b"is serving: promote another version first" in page.content
    staff_client.post(f"/admin/classifier/modelversion/{active_model.pk}/delete/", {"post": "yes"})
    assert ModelVersion.objects.filter(pk=active_model.pk).exists()
    # nor through the bulk action
    staff_client.post(
        "/admin/classifier/modelversion/",
        {"action": "delete_selected", "_selected_action": [active_model.pk], "post": "yes"},
    )
    assert ModelVersion.objects.filter(pk=active_model.pk).exists()


def test_deleting_the_rollback_target_warns_and_deleting_removes_artifacts(
    staff_client, active_model, django_capture_on_commit_callbacks
):
    newer = _second_version()
    newer.promote(reason="test")  # the bootstrap is now what a rollback goes back to
    page = staff_client.get(f"/admin/classifier/modelversion/{active_model.pk}/delete/")
    assert b"what a rollback would go back to" in page.content
    files = [active_model.tflite.name, active_model.keras.name, *active_model.plots]
    assert all(default_storage.exists(name) for name in files if name)
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(
            f"/admin/classifier/modelversion/{active_model.pk}/delete/", {"post": "yes"}
        )
    assert response.status_code == 302
    assert not ModelVersion.objects.filter(pk=active_model.pk).exists()
    assert not any(default_storage.exists(name) for name in files if name)
    assert default_storage.exists(newer.tflite.name), "another version's files are kept"


def _promote(staff_client, version: ModelVersion, **fields):
    return staff_client.post(
        "/admin/classifier/modelversion/",
        {"action": "promote_selected", "_selected_action": [version.pk], **fields},
    )


def test_promote_asks_for_a_reason_and_shows_the_verdict(staff_client, active_model):
    candidate = _second_version()
    page = _promote(staff_client, candidate)
    assert page.status_code == 200
    assert b"Serve version" in page.content and b"did not reject" in page.content
    assert b"mnist-test" in page.content
    assert ModelVersion.active() == active_model, "nothing changes before the confirmation"
    refused = _promote(staff_client, candidate, post="yes", reason="  ")
    assert refused.status_code == 200 and b"This field is required" in refused.content
    assert ModelVersion.active() == active_model
    done = _promote(staff_client, candidate, post="yes", reason="better on thin strokes")
    assert done.status_code == 302
    candidate.refresh_from_db()
    assert candidate.is_active
    assert candidate.promotions.get().reason == "better on thin strokes"


def test_promoting_a_rejected_version_needs_an_explicit_yes(staff_client, active_model):
    rejected = _second_version("rejected", ["MNIST test 39.00% < 99.00%"])
    page = _promote(staff_client, rejected)
    assert b"The gate rejected this version" in page.content
    assert b"MNIST test 39.00% &lt; 99.00%" in page.content
    refused = _promote(staff_client, rejected, post="yes", reason="I know")
    assert refused.status_code == 200 and b"tick the box" in refused.content
    assert ModelVersion.active() == active_model
    done = _promote(staff_client, rejected, post="yes", reason="I know", override_gate="on")
    assert done.status_code == 302
    assert ModelVersion.active().pk == rejected.pk


def test_version_page_shows_per_class_metrics_and_list_shows_test_sizes(staff_client, active_model):
    page = staff_client.get(f"/admin/classifier/modelversion/{active_model.pk}/change/")
    assert page.status_code == 200
    assert b'class="per-class"' in page.content and b"precision" in page.content
    tests = active_model.metrics["tests"]
    for name in ("mnist-test", "pendigits"):  # every digit: a full table
        assert f'data-test="{name}"'.encode() in page.content
    styles = [name for name in tests if name.startswith(("style:", "probe:"))]
    assert styles, "the bootstrap model's report has style sets"
    for name in styles:  # one digit each: one summary row, not ten rows of zeros
        assert f'data-test="{name}"'.encode() not in page.content
        assert f'<th scope="row">{name}</th>'.encode() in page.content
    listing = staff_client.get("/admin/classifier/modelversion/")
    count = tests["mnist-test"]["n"]
    assert f" of {count:,}".encode() in listing.content


# --- Training runs --------------------------------------------------------------------


def test_a_failed_run_has_a_run_again_button_that_queues_the_same_settings(
    staff_client, monkeypatch
):
    from training import tasks
    from training.models import TrainingRun

    queued = []
    monkeypatch.setattr(tasks, "enqueue", queued.append)
    failed = TrainingRun.objects.create(
        status="failed", error="its worker died", recipe="vgg-bn", architecture="vgg-bn", epochs=5
    )
    page = staff_client.get(f"/admin/training/trainingrun/{failed.pk}/change/").content.decode()
    assert 'id="run-again"' in page and 'id="cancel-run"' not in page
    response = staff_client.post(f"/admin/training/trainingrun/{failed.pk}/again/")
    again = TrainingRun.objects.exclude(pk=failed.pk).get()
    assert response.status_code == 302 and response["Location"].endswith(f"/{again.pk}/change/")
    assert (again.status, again.recipe, again.architecture, again.epochs) == (
        "queued", "vgg-bn", "vgg-bn", 5,
    )  # fmt: skip
    assert again.started_by.username == "admin" and queued == [again]
    # a queued run has no such button, and its URL refuses
    page = staff_client.get(f"/admin/training/trainingrun/{again.pk}/change/").content.decode()
    assert 'id="run-again"' not in page and 'id="cancel-run"' in page
    staff_client.post(f"/admin/training/trainingrun/{again.pk}/again/")
    assert TrainingRun.objects.count() == 2
