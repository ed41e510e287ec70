"""One client flooding the dataset: daily quota, pending cap, near-copies, and the
admin's way to throw out everything one client sent."""

from __future__ import annotations

import io
import json

import numpy as np
from PIL import Image

from collector.models import Drawing

from .conftest import data_url, set_rates

A, B = "198.51.100.10", "198.51.100.20"


def contribute(client, png: bytes, label: int, address: str = A):
    return client.post(
        "/api/drawings/",
        json.dumps({"image": data_url(png), "label": label}),
        content_type="application/json",
        REMOTE_ADDR=address,
    )


def with_pixel_changed(png: bytes, x: int, y: int) -> bytes:
    pixels = np.array(Image.open(io.BytesIO(png)).convert("RGBA"))
    pixels[y, x] = [0, 0, 0, 255] if pixels[y, x, 3] < 128 else [0, 0, 0, 0]
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "PNG")
    return out.getvalue()


def test_a_one_pixel_change_is_a_duplicate_for_its_sender(client, active_model, canvas_png):
    original = canvas_png(3)
    assert contribute(client, original, 3).status_code == 201
    changed = with_pixel_changed(original, 128, 128)
    assert changed != original  # the content hash differs
    again = contribute(client, changed, 3)
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert again.json()["duplicate_of"] == "your_near_copy"  # said as what the check found
    assert Drawing.objects.count() == 1
    same = contribute(client, original, 3, address=B)  # the very picture, from anyone
    assert same.status_code == 200 and same.json()["duplicate_of"] == "same_picture"
    # Another client drawing the same is another contribution, as before.
    assert contribute(client, changed, 3, address=B).status_code == 201
    assert contribute(client, canvas_png(4), 4).json()["duplicate_of"] is None


def test_real_contributors_notice_nothing(client, active_model, pen_digits, settings):
    """One writer's many 7s and 1s, all sent from one address, all kept."""
    from classifier import canvas

    set_rates(settings, contribute="1000/min")
    writer = pen_digits[0].writer
    mine = [d for d in pen_digits if d.writer == writer and d.label in (1, 7)]
    assert len(mine) >= 15
    codes = [
        contribute(client, canvas.render_strokes(d.strokes), d.label).status_code for d in mine
    ]
    assert codes == [201] * len(mine)


def test_a_daily_quota_per_client(client, active_model, canvas_png, settings):
    settings.DIGITS_DAILY_CONTRIBUTIONS = 3
    settings.DIGITS_AUTO_APPROVE = True  # so the pending cap is not what stops it
    codes = [contribute(client, canvas_png(k), k).status_code for k in range(4)]
    assert codes == [201, 201, 201, 429]
    refused = contribute(client, canvas_png(5), 5)
    assert refused.json()["code"] == "quota_exceeded"
    assert "24 hours" in refused.json()["error"]
    assert contribute(client, canvas_png(6), 6, address=B).status_code == 201
    assert Drawing.objects.count() == 4


def test_a_cap_on_drawings_waiting_for_review(client, active_model, canvas_png, settings):
    settings.DIGITS_PENDING_PER_CLIENT = 2
    assert [contribute(client, canvas_png(k), k).status_code for k in range(3)] == [201, 201, 429]
    Drawing.objects.filter(label=0).update(status=Drawing.Status.APPROVED)  # staff reviewed
    assert contribute(client, canvas_png(4), 4).status_code == 201


def test_the_admin_rejects_everything_pending_from_one_sender(
    client, admin_client, active_model, canvas_png
):
    for k in range(3):
        assert contribute(client, canvas_png(k), k, address=A).status_code == 201
    assert contribute(client, canvas_png(5), 5, address=B).status_code == 201
    Drawing.objects.filter(label=2).update(status=Drawing.Status.APPROVED)
    one_of_a = Drawing.objects.get(label=0)
    response = admin_client.post(
        "/admin/collector/drawing/",
        {"action": "reject_pending_from_senders", "_selected_action": [one_of_a.pk]},
        follow=True,
    )
    assert response.status_code == 200
    assert "Rejected 2 pending drawing(s) from 1 sender(s)" in response.content.decode()
    statuses = dict(Drawing.objects.values_list("label", "status"))
    assert statuses == {0: "rejected", 1: "rejected", 2: "approved", 5: "pending"}
    # The list shows who sent each one, and finds all of a sender's drawings.
    listing = admin_client.get("/admin/collector/drawing/", {"q": one_of_a.client})
    assert listing.status_code == 200
    assert len(listing.context["cl"].result_list) == 3
    assert A not in listing.content.decode()  # a keyed hash, never the address


def test_quotas_hold_without_redis(client, active_model, canvas_png, settings, tmp_path):
    from digits_site import limits

    settings.REDIS_URL = f"redis+socket://{tmp_path / 'gone.sock'}"
    limits.counters.reset()
    settings.DIGITS_DAILY_CONTRIBUTIONS = 2
    codes = [contribute(client, canvas_png(k), k).status_code for k in range(3)]
    assert codes == [201, 201, 429]


def png_of(size: tuple[int, int], mode: str = "L", value: int = 0) -> bytes:
    """A digit-like bar on paper, in ``mode`` ("I;16": 16 bits a pixel)."""
    width, height = size
    pixels = np.full((height, width), 255 if mode == "L" else 65535, np.uint16)
    pixels[height // 5 : height * 4 // 5, width * 2 // 5 : width * 3 // 5] = value
    if mode == "L":
        image = Image.fromarray(pixels.astype(np.uint8), "L")
    else:
        image = Image.frombytes("I;16", (width, height), pixels.astype("<u2").tobytes())
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def test_contributions_are_stored_as_the_pad_sends_them(client, active_model):
    for size, mode in [((500, 500), "I;16"), ((256, 256), "I;16"), ((300, 200), "L")]:
        refused = contribute(client, png_of(size, mode), 1)
        assert refused.status_code == 400, (size, mode)
        assert "at most 256×256 pixels, 8 bits per channel" in refused.json()["error"]
    assert contribute(client, png_of((28, 28)), 1).status_code == 201  # small is fine
    assert Drawing.objects.count() == 1


def test_a_daily_bound_on_the_bytes_one_client_stores(client, active_model, canvas_png, settings):
    sizes = [len(canvas_png(k)) for k in range(3)]
    settings.DIGITS_DAILY_CONTRIBUTION_BYTES = sizes[0] + sizes[1] + sizes[2] // 2
    codes = [contribute(client, canvas_png(k), k).status_code for k in range(3)]
    assert codes == [201, 201, 429]
    assert Drawing.objects.get(label=0).stored_bytes == sizes[0]
    assert contribute(client, canvas_png(2), 2, address=B).status_code == 201


def test_a_burst_cannot_overshoot_the_pending_cap(
    transactional_db, active_model, canvas_png, settings
):
    """Eight at once against a cap of three: the check and the insert are one step."""
    import threading

    from django.db import connection
    from django.test import Client

    settings.DIGITS_PENDING_PER_CLIENT = 3
    set_rates(settings, contribute="1000/min")
    pngs = [canvas_png(k) for k in range(8)]
    codes: list[int] = []
    start = threading.Barrier(8)

    def send(k: int) -> None:
        try:
            start.wait()
            codes.append(contribute(Client(), pngs[k], k).status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=send, args=(k,)) for k in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert Drawing.objects.filter(status=Drawing.Status.PENDING).count() == 3
    assert sorted(codes) == [201] * 3 + [429] * 5, codes


def edited(png: bytes, how: str) -> bytes:
    from PIL import ImageFilter

    image = Image.open(io.BytesIO(png)).convert("RGBA")
    if how == "turned 2°":
        image = image.rotate(2, resample=Image.Resampling.BICUBIC)
    elif how == "scaled 0.9":
        small = image.resize((230, 230), Image.Resampling.LANCZOS)
        image = Image.new("RGBA", (256, 256), (0, 0, 0, 0))
        image.paste(small, (13, 13))
    elif how == "thicker pen":
        r, g, b, a = image.split()
        image = Image.merge("RGBA", (r, g, b, a.filter(ImageFilter.MaxFilter(5))))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def test_turned_rescaled_or_thicker_copies_are_duplicates_for_their_sender(
    client, active_model, canvas_png, settings
):
    set_rates(settings, contribute="1000/min")
    originals = [canvas_png(k) for k in range(10)]
    for k, png in enumerate(originals):
        assert contribute(client, png, k).status_code == 201
    for how in ("turned 2°", "scaled 0.9", "thicker pen"):
        for k, png in enumerate(originals):
            again = contribute(client, edited(png, how), k)
            assert again.status_code == 200 and again.json()["duplicate"], (how, k)
            assert again.json()["id"] == Drawing.objects.get(label=k).id
    assert Drawing.objects.count() == 10
