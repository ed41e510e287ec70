"""Content-Security-Policy on every page, checked in real Chromium (a violated
policy is a console error, and a page whose scripts are blocked does not work),
and the admin sign-in lockout."""

from __future__ import annotations

import pytest

from .conftest import launched_chromium
from .test_draw_page import draw, shown_digit

PAGES = ["/", "/contribute/", "/dataset/", "/api/docs/", "/admin/login/"]
STAFF_PAGES = [
    "/admin/",
    "/admin/collector/drawing/",
    "/admin/classifier/modelversion/",
    "/admin/training/trainingrun/",
    "/admin/training/trainingrun/add/",
]


@pytest.mark.django_db
@pytest.mark.parametrize("path", PAGES)
def test_every_html_page_has_a_strict_policy(client, path):
    from classifier.registry import ensure_active_model

    ensure_active_model()
    response = client.get(path)
    assert response.status_code == 200 and response["Content-Type"].startswith("text/html")
    policy = response["Content-Security-Policy"]
    directives = dict(
        (part.split()[0], part.split()[1:]) for part in policy.split(";") if part.strip()
    )
    assert "'unsafe-inline'" not in directives["script-src"]
    assert "'unsafe-eval'" not in directives["script-src"]
    assert directives["default-src"] == ["'self'"]
    assert directives["object-src"] == ["'none'"] and directives["frame-ancestors"] == ["'none'"]


@pytest.mark.django_db
def test_the_policy_built_once_is_django_csps_own_and_follows_the_settings(client):
    """``ContentPolicy`` caches the header: it must be the one django-csp builds,
    on API answers as on pages, and change when the settings do."""
    from csp.utils import build_policy
    from django.test import override_settings

    answer = client.post("/api/predict/", {}, content_type="application/json")
    assert answer.status_code == 400
    assert answer["Content-Security-Policy"] == build_policy()
    assert client.get("/api/dataset/stats/")["Content-Security-Policy"] == build_policy()
    stricter = {"DIRECTIVES": {"default-src": ["'none'"], "frame-ancestors": ["'none'"]}}
    with override_settings(CONTENT_SECURITY_POLICY=stricter):
        changed = client.get("/api/dataset/stats/")["Content-Security-Policy"]
    # (django-csp does not promise the directives' order)
    assert sorted(part.strip() for part in changed.split(";")) == [
        "default-src 'none'",
        "frame-ancestors 'none'",
    ]
    assert client.get("/api/dataset/stats/")["Content-Security-Policy"] == build_policy()


@pytest.mark.browser
def test_no_page_breaks_the_policy_in_chromium(
    transactional_db, live_server, sync_browser_thread, pen_digits
):
    from django.contrib.auth.models import User

    from classifier import canvas
    from classifier.registry import ensure_active_model

    ensure_active_model()
    User.objects.create_superuser("staff", "staff@example.com", "a-long-staff-password")
    problems: list[str] = []
    with launched_chromium() as browser:
        page = browser.new_page(viewport={"width": 1100, "height": 800})
        page.on(
            "console",
            lambda m: problems.append(f"{page.url}: {m.text}") if m.type == "error" else None,
        )
        page.on("pageerror", lambda e: problems.append(f"{page.url}: {e}"))
        for path in PAGES:
            page.goto(live_server.url + path)
            page.wait_for_load_state("networkidle")
        # The scripts run under the policy: the drawing page still predicts.
        page.goto(live_server.url + "/")
        draw(page, canvas.fit_to_canvas(pen_digits[0].strokes))
        assert shown_digit(page) is not None
        # The API docs' Swagger UI rendered (its script is a file, not inline).
        page.goto(live_server.url + "/api/docs/")
        page.wait_for_selector(".swagger-ui .info", timeout=15000)
        page.goto(live_server.url + "/admin/login/")
        page.fill("#id_username", "staff")
        page.fill("#id_password", "a-long-staff-password")
        page.click("input[type=submit]")
        page.wait_for_url(live_server.url + "/admin/")
        for path in STAFF_PAGES:
            page.goto(live_server.url + path)
            page.wait_for_load_state("networkidle")
    assert problems == []


@pytest.mark.django_db
def test_admin_sign_in_locks_out_after_repeated_failures(client, settings):
    from django.contrib.auth.models import User

    User.objects.create_superuser("staff", "staff@example.com", "the-right-password-1")
    settings.DIGITS_TRUSTED_PROXIES = []

    def sign_in(password: str, address: str = "198.51.100.5", **headers):
        return client.post(
            "/admin/login/?next=/admin/",
            {"username": "staff", "password": password},
            REMOTE_ADDR=address,
            **headers,
        )

    for k in range(settings.AXES_FAILURE_LIMIT):
        # A new claimed address each time changes nothing: no proxy is trusted.
        answer = sign_in(f"guess-{k}", HTTP_X_FORWARDED_FOR=f"10.9.9.{k}")
        assert answer.status_code in (200, 429)
    locked = sign_in("the-right-password-1")
    assert locked.status_code == 429
    assert "_auth_user_id" not in client.session
    # Someone else, elsewhere, signs in as usual.
    client.cookies.clear()
    assert sign_in("the-right-password-1", address="203.0.113.40").status_code == 302
    assert "_auth_user_id" in client.session
