"""Failures to authenticate count against the address, whatever the username or
token: one address can no longer try a few passwords on each of many accounts,
or guess API tokens at full speed (``digits_site.attempts``)."""

from __future__ import annotations

import pytest
from django.test import Client
from rest_framework.authtoken.models import Token


@pytest.fixture
def five_failures_an_hour(settings):
    rates = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**rates, "auth_failures": "5/hour"},
    }
    settings.AXES_FAILURE_LIMIT = 100  # axes' per-username lockout out of the way


def sign_in(client: Client, username: str, password: str, address: str):
    return client.post(
        "/admin/login/?next=/admin/",
        {"username": username, "password": password},
        REMOTE_ADDR=address,
    )


def test_one_address_trying_many_usernames_is_stopped(five_failures_an_hour, staff_user):
    client = Client()
    for k in range(5):
        page = sign_in(client, f"user{k}", "wrong", "203.0.113.7")
        assert page.status_code == 200 and b"correct username" in page.content
    refused = sign_in(client, "user9", "wrong", "203.0.113.7")
    assert refused.status_code == 429 and int(refused["Retry-After"]) > 0
    assert b"Too many failed sign-ins from your address" in refused.content
    # Not even the right password gets through from there meanwhile...
    assert sign_in(client, "admin", "a-password-for-tests-only", "203.0.113.7").status_code == 429
    # ...while another address signs in as usual.
    other = sign_in(Client(), "admin", "a-password-for-tests-only", "198.51.100.2")
    assert other.status_code == 302 and other["Location"] == "/admin/"


def test_right_sign_ins_do_not_count(five_failures_an_hour, staff_user):
    for _ in range(8):
        response = sign_in(Client(), "admin", "a-password-for-tests-only", "203.0.113.8")
        assert response.status_code == 302


def test_wrong_api_tokens_are_throttled_per_address(five_failures_an_hour, staff_user):
    right = Token.objects.create(user=staff_user).key
    client = Client()

    def runs(token: str, address: str):
        return client.get(
            "/api/training-runs/", HTTP_AUTHORIZATION=f"Token {token}", REMOTE_ADDR=address
        )

    for k in range(5):
        wrong = runs(f"{k:040x}", "203.0.113.9")
        assert wrong.status_code == 401 and wrong.json()["code"]
    refused = runs("f" * 40, "203.0.113.9")
    assert refused.status_code == 429 and refused.json()["code"] == "throttled"
    assert "wrong API tokens" in refused.json()["error"] and int(refused["Retry-After"]) > 0
    assert runs(right, "203.0.113.9").status_code == 429  # not looked up meanwhile
    assert runs(right, "198.51.100.3").status_code == 200
    for _ in range(8):  # a right token never counts
        assert runs(right, "198.51.100.4").status_code == 200
