"""My contributions: a contributor sees what this browser sent, with its review
status and the label kept, and withdraws what still waits for review."""

from __future__ import annotations

import json

import pytest
from django.core.files.storage import default_storage
from django.test import Client

from collector.models import Drawing

from .conftest import data_url, launched_chromium


@pytest.fixture
def served_site(transactional_db, live_server):
    from classifier.registry import ensure_active_model

    ensure_active_model()
    return live_server.url


def send(client, png: bytes, label: int, source: str = "canvas", address: str = "127.0.0.9"):
    return client.post("/api/drawings/", json.dumps({"image": data_url(png), "label": label,
                       "source": source}), content_type="application/json",
                       REMOTE_ADDR=address)  # fmt: skip


def test_a_browser_sees_its_own_drawings_with_their_status_and_label(db, active_model, canvas_png):
    mine, theirs = Client(), Client()
    first = send(mine, canvas_png(3), 3).json()
    second = send(mine, canvas_png(5), 5, source="correction").json()
    send(theirs, canvas_png(8), 8, address="127.0.0.10")
    Drawing.objects.filter(pk=first["id"]).update(status="approved")
    page = mine.get("/contributions/")
    html = page.content.decode()
    assert page.status_code == 200
    assert "Approved: the next model learns from it" in html and "Waiting for review" in html
    assert "(a correction)" in html and "2 sent: 1 waiting for review, 1 approved" in html
    # each picture is shown to its sender, even while it waits for review
    pending = Drawing.objects.get(pk=second["id"])
    assert mine.get(f"/drawings/{pending.sha256}.png").status_code == 200
    assert theirs.get(f"/drawings/{pending.sha256}.png").status_code == 404
    # the other browser sees only its own
    assert "2 sent" not in theirs.get("/contributions/").content.decode()
    assert "Nothing sent from this browser yet" in Client().get("/contributions/").content.decode()


def test_a_pending_drawing_can_be_withdrawn_by_its_sender_only(db, active_model, canvas_png):
    mine, theirs = Client(), Client()
    sent = send(mine, canvas_png(4), 4).json()
    drawing = Drawing.objects.get(pk=sent["id"])
    name = drawing.image.name
    assert theirs.post(f"/contributions/{drawing.pk}/withdraw/").status_code == 404
    assert mine.get(f"/contributions/{drawing.pk}/withdraw/").status_code == 405
    answer = mine.post(f"/contributions/{drawing.pk}/withdraw/", follow=True)
    assert "Your 4 was withdrawn" in answer.content.decode()
    assert not Drawing.objects.filter(pk=drawing.pk).exists()
    # an approved one stays: it is the dataset's now
    kept = send(mine, canvas_png(6), 6).json()
    Drawing.objects.filter(pk=kept["id"]).update(status="approved")
    answer = mine.post(f"/contributions/{kept['id']}/withdraw/", follow=True)
    assert "Only drawings waiting for review" in answer.content.decode()
    assert Drawing.objects.filter(pk=kept["id"]).exists()
    from django.db import connection

    if connection.in_atomic_block:  # the file goes after the commit
        return
    assert not default_storage.exists(name)


@pytest.mark.browser
def test_my_contributions_page_on_a_phone(served_site, sync_browser_thread, canvas_png):
    url = served_site
    with launched_chromium() as browser:
        phone = browser.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=2)
        phone.goto(url + "/contribute/")
        png = canvas_png(2)
        phone.evaluate(
            """async ([image]) => {
              const token = document.cookie.match(/csrftoken=([^;]+)/);
              await fetch('/api/drawings/', {method: 'POST', headers: {'Content-Type':
                'application/json', 'X-CSRFToken': token ? token[1] : ''},
                body: JSON.stringify({image, label: 2})}); }""",
            [data_url(png)],
        )
        phone.goto(url + "/contributions/")
        assert phone.get_by_text("Waiting for review", exact=True).is_visible()
        from pathlib import Path

        from django.conf import settings

        shots = Path(settings.DIGITS_DATA_DIR) / "screenshots"
        shots.mkdir(parents=True, exist_ok=True)
        phone.screenshot(path=shots / "my-contributions-phone.png", full_page=True)
        phone.get_by_role("button", name="Withdraw your 2", exact=False).click()
        assert phone.get_by_text("Your 2 was withdrawn").is_visible()
