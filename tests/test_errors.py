"""How errors look: JSON ``{"error", "code"}`` under /api/, pages elsewhere
(``digits_site.errors``)."""

from __future__ import annotations

from django.core.exceptions import RequestDataTooBig
from django.test import override_settings
from django.urls import path
from rest_framework.exceptions import ValidationError

from digits_site.errors import DatabaseBusy, json_exception_handler


def test_unknown_api_urls_answer_json_and_pages_stay_html(client, db):
    response = client.get("/api/training-runs/not-a-number/")
    assert response.status_code == 404 and response["Content-Type"] == "application/json"
    assert response.json() == {
        "error": "There is no API endpoint at /api/training-runs/not-a-number/.",
        "code": "not_found",
    }
    page = client.get("/no-such-page/")
    assert page.status_code == 404 and page["Content-Type"].startswith("text/html")
    # the site's own page: its header, what went wrong, and ways back
    html = page.content.decode()
    assert 'class="site-header"' in html and "There is no page here" in html
    assert "/no-such-page/" in html and 'href="/"' in html


def test_pages_and_api_answers_are_compressed_for_clients_that_accept_it(client, db):
    page = client.get("/", HTTP_ACCEPT_ENCODING="gzip, br")
    assert page.status_code == 200 and page["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in page["Vary"]
    api = client.get("/api/dataset/stats/", HTTP_ACCEPT_ENCODING="gzip")
    assert api.status_code == 200 and api["Content-Encoding"] == "gzip"
    plain = client.get("/")
    assert not plain.has_header("Content-Encoding")


def crash(request):
    raise RuntimeError("a bug")


urlpatterns = [path("api/crash/", crash), path("crash/", crash)]
handler500 = "digits_site.errors.server_error"


@override_settings(ROOT_URLCONF=__name__)
def test_a_crash_in_the_api_is_a_json_500_without_a_trace(client, db):
    """The last line of defence: never a stack trace, and JSON where JSON is spoken."""
    client.raise_request_exception = False
    response = client.get("/api/crash/")
    assert response.status_code == 500 and response["Content-Type"] == "application/json"
    assert response.json()["error"].startswith("Something went wrong on our side")
    assert b"a bug" not in response.content and b"Traceback" not in response.content
    page = client.get("/crash/")
    assert page.status_code == 500 and b"a bug" not in page.content


def test_field_errors_become_one_sentence_with_a_code():
    response = json_exception_handler(
        ValidationError({"epochs": ["Between 1 and 200 epochs."], "seed": "Too big."}), {}
    )
    assert response.status_code == 400
    assert response.data == {
        "error": "epochs: Between 1 and 200 epochs.; seed: Too big.",
        "code": "invalid",
    }


def test_a_body_over_the_limit_is_a_413_and_a_busy_database_a_503_to_retry():
    too_big = json_exception_handler(RequestDataTooBig("big"), {})
    assert too_big.status_code == 413 and too_big.data["code"] == "too_large"
    from django.db import OperationalError

    busy = json_exception_handler(OperationalError("database is locked"), {})
    assert busy.status_code == 503 and busy.data["code"] == DatabaseBusy.default_code
    assert busy["Retry-After"] == str(DatabaseBusy.wait)


def test_other_exceptions_are_left_to_django():
    assert json_exception_handler(KeyError("not an API error"), {}) is None
