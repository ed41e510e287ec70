"""POST /api/drawings/ and GET /api/dataset/stats/: contributing, deduping, refusing."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from collector.models import Drawing

from .conftest import data_url, instance_env, set_rates

URL = "/api/drawings/"


def contribute(client, body):
    return client.post(URL, json.dumps(body), content_type="application/json")


def stored_files(settings) -> list[Path]:
    root = Path(settings.MEDIA_ROOT) / "drawings"
    return sorted(root.rglob("*.png")) if root.exists() else []


def test_a_contribution_is_stored_exactly_as_sent(client, active_model, canvas_png, settings):
    # given
    png = canvas_png(7)
    # when
    response = contribute(client, {"image": data_url(png), "label": 7})
    # then
    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) >= {"id", "label", "split", "status"}
    assert body["label"] == 7 and body["status"] == "pending" and body["total"] == 1
    drawing = Drawing.objects.get(id=body["id"])
    assert drawing.image.name == f"drawings/{drawing.sha256[:2]}/{drawing.sha256}.png"
    assert stored_files(settings)[0].read_bytes() == png
    assert drawing.source == "canvas"
    assert drawing.predicted_label == 7 and drawing.model_version_id == active_model.id
    assert drawing.session_key and drawing.contributor is None


def test_a_duplicate_answers_200_with_the_existing_drawing(
    client, active_model, canvas_png, settings
):
    first = contribute(client, {"image": data_url(canvas_png(3)), "label": 3}).json()
    again = contribute(client, {"image": data_url(canvas_png(3)), "label": 5})
    assert again.status_code == 200
    assert again.json()["id"] == first["id"] and again.json()["label"] == 3
    assert Drawing.objects.count() == 1 and len(stored_files(settings)) == 1


def test_multipart_and_correction_source(client, active_model, canvas_png):
    upload = io.BytesIO(canvas_png(9))
    upload.name = "nine.png"
    response = client.post(URL, {"image": upload, "label": "9", "source": "correction"})
    assert response.status_code == 201, response.content
    assert Drawing.objects.get().source == "correction"


def test_auto_approve_setting(client, active_model, canvas_png, settings):
    settings.DIGITS_AUTO_APPROVE = True
    response = contribute(client, {"image": data_url(canvas_png(1)), "label": 1})
    assert response.json()["status"] == "approved"


def _blank() -> bytes:
    out = io.BytesIO()
    Image.new("RGBA", (256, 256), (0, 0, 0, 0)).save(out, "PNG")
    return out.getvalue()


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"label": 3}, '"image" is missing'),
        ({"image": "png please", "label": 3}, "data URL"),
        ({"image": None, "label": 3}, "data URL"),
        ("GOOD", '"label" is missing'),
        ({"image": "GOOD", "label": 10}, "digit from 0 to 9"),
        ({"image": "GOOD", "label": -1}, "digit from 0 to 9"),
        ({"image": "GOOD", "label": "seven"}, "digit from 0 to 9"),
        ({"image": "GOOD", "label": 3.5}, "digit from 0 to 9"),
        ({"image": "GOOD", "label": True}, "digit from 0 to 9"),
        ({"image": "GOOD", "label": [3]}, "digit from 0 to 9"),
        # Unicode "digits" that are not ASCII: superscript three and circled one were
        # a 500; Arabic-Indic and full-width three were accepted as 3
        ({"image": "GOOD", "label": "\u00b3"}, "digit from 0 to 9"),
        ({"image": "GOOD", "label": "\u2460"}, "digit from 0 to 9"),
        ({"image": "GOOD", "label": "\u0663"}, "digit from 0 to 9"),
        ({"image": "GOOD", "label": "\uff13"}, "digit from 0 to 9"),
        ({"image": "GOOD", "label": " 3"}, "digit from 0 to 9"),
        ({"image": "GOOD", "label": "03"}, "digit from 0 to 9"),
        ({"image": "GOOD", "label": 3, "source": "import:evil"}, '"source" must be one of'),
        ({"image": "BLANK", "label": 3}, "draw a digit"),
    ],
)
def test_bad_contributions_leave_no_row_and_no_file(
    client, active_model, canvas_png, settings, body, fragment
):
    replacements = {"GOOD": data_url(canvas_png(3)), "BLANK": data_url(_blank())}
    if body == "GOOD":
        body = {"image": replacements["GOOD"]}
    else:
        body = {k: replacements.get(v, v) if isinstance(v, str) else v for k, v in body.items()}
    response = contribute(client, body)
    assert response.status_code == 400, response.content
    assert fragment.lower() in response.json()["error"].lower()
    assert Drawing.objects.count() == 0 and stored_files(settings) == []


def test_oversized_body(client, active_model, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 5_000
    response = client.post(
        URL,
        json.dumps({"image": "data:image/png;base64," + "A" * 10_000, "label": 1}),
        content_type="application/json",
    )
    assert response.status_code == 413 and "error" in response.json()
    assert Drawing.objects.count() == 0


def test_contributions_are_throttled_per_client(client, active_model, canvas_png, settings):
    set_rates(settings, contribute="3/min")
    responses = [
        contribute(client, {"image": data_url(canvas_png(d)), "label": d}) for d in range(5)
    ]
    assert [r.status_code for r in responses] == [201, 201, 201, 429, 429]
    assert "throttled" in responses[-1].json()["error"].lower()
    assert int(responses[-1]["Retry-After"]) > 0
    assert Drawing.objects.count() == 3


def test_the_limit_is_shared_by_every_web_process(
    client, active_model, canvas_png, settings, tmp_path, limits_redis
):
    """gunicorn answers with several processes (and hosts); a count kept in each
    one's memory would let a client through once per process."""
    set_rates(settings, contribute="3/min")
    for d in range(3):
        assert contribute(client, {"image": data_url(canvas_png(d)), "label": d}).status_code == 201
    another_process = (
        "import sys, django; django.setup()\n"
        "from django.test.utils import setup_test_environment; setup_test_environment()\n"
        "from django.test import Client\n"
        "r = Client().post('/api/drawings/', sys.stdin.read(), content_type='application/json')\n"
        "print(r.status_code)\n"
    )
    # Its own empty database: were it let through, it could not store anything.
    env = instance_env(
        tmp_path / "another-process",
        DJANGO_SETTINGS_MODULE="digits_site.settings",
        REDIS_URL=limits_redis,
        # Counters are keyed by the client's address, keyed in turn by the secret.
        DJANGO_SECRET_KEY=settings.SECRET_KEY,
        DIGITS_CONTRIBUTE_RATE="3/min",
    )
    answer = subprocess.run(
        [sys.executable, "-c", another_process],
        input=json.dumps({"image": data_url(canvas_png(4)), "label": 4}),
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=settings.BASE_DIR,
    )
    assert answer.stdout.strip().splitlines()[-1:] == ["429"], answer.stderr[-2000:]
    assert Drawing.objects.count() == 3


def test_stats_count_every_drawing(client, active_model, canvas_png):
    for label in (1, 1, 4):
        index = Drawing.objects.filter(label=label).count()
        contribute(client, {"image": data_url(canvas_png(label, index)), "label": label})
    Drawing.objects.filter(label=4).update(status="rejected")
    stats = client.get("/api/dataset/stats/").json()
    assert stats["total"] == 3
    assert (
        stats["by_label"]["1"] == 2 and stats["by_label"]["4"] == 1 and stats["by_label"]["0"] == 0
    )
    assert sum(stats["by_split"].values()) == 3
    assert stats["by_status"] == {"pending": 2, "approved": 0, "rejected": 1}
    assert stats["by_source"] == {"canvas": 3}


def test_signed_in_contributors_are_credited_and_csrf_protected(
    db, active_model, canvas_png, django_user_model
):
    from django.test import Client

    user = django_user_model.objects.create_user("ada", password="a-password-for-tests")
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(user)
    body = json.dumps({"image": data_url(canvas_png(6)), "label": 6})
    # without the token the page would carry, a signed-in write is refused
    refused = browser.post(URL, body, content_type="application/json")
    assert refused.status_code == 403 and "CSRF" in refused.json()["error"]
    # the contribute page sets the cookie; its token makes the same write work
    token = browser.get("/contribute/").cookies["csrftoken"].value
    accepted = browser.post(URL, body, content_type="application/json", HTTP_X_CSRFTOKEN=token)
    assert accepted.status_code == 201, accepted.content
    assert Drawing.objects.get().contributor == user


def test_a_source_of_the_wrong_type_is_a_400(client, active_model, canvas_png, settings):
    response = contribute(
        client, {"image": data_url(canvas_png(3)), "label": 3, "source": ["canvas"]}
    )
    assert response.status_code == 400 and '"source" must be one of' in response.json()["error"]
    assert Drawing.objects.count() == 0 and stored_files(settings) == []
