"""Staff add a drawing in the admin as contributors do, and open its image."""

from __future__ import annotations

import io

from django.core.files.storage import default_storage
from django.urls import reverse
from PIL import Image

from collector.models import Drawing, NewDrawing


def png_upload(data: bytes, name: str = "digit.png"):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, data, content_type="image/png")


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
    assert b"added successfully" not in response.content  # one true message
    stored = Drawing.objects.get()
    assert stored.label == 2
    assert response.redirect_chain[-1][0].endswith(f"/collector/drawing/{stored.pk}/change/")


def test_a_scan_sent_as_jpeg_is_stored_as_a_png(staff_client, active_model, canvas_png):
    ink = Image.open(io.BytesIO(canvas_png(7))).convert("RGBA")
    paper = Image.new("RGB", (1000, 1000), (235, 232, 225))  # a photo of paper
    paper.paste(ink.resize((1000, 1000)), mask=ink.resize((1000, 1000)))
    jpeg = io.BytesIO()
    paper.save(jpeg, "JPEG", quality=85)
    response = staff_client.post(
        "/admin/collector/drawing/add/",
        {"upload": png_upload(jpeg.getvalue(), "scan.jpg"), "label": "7", "status": "pending"},
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    drawing = Drawing.objects.get()
    with default_storage.open(drawing.image.name, "rb") as handle:
        stored = Image.open(io.BytesIO(handle.read()))
    assert stored.format == "PNG" and max(stored.size) <= 512
    assert drawing.label == 7 and drawing.predicted_label is not None


def test_a_drawings_image_link_opens_the_image(staff_client, canvas_png):
    drawing, _ = Drawing.objects.add(NewDrawing(canvas_png(8), 8))
    page = staff_client.get(f"/admin/collector/drawing/{drawing.pk}/change/")
    assert page.status_code == 200
    link = reverse("drawing-image", args=[drawing.sha256])
    assert f'href="{link}"'.encode() in page.content
    assert b'href="/media/' not in page.content
    image = staff_client.get(link)
    assert image.status_code == 200 and image["Content-Type"] == "image/png"
