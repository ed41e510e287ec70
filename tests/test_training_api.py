"""The staff-only training and model API: who may do what."""

from __future__ import annotations

import json

import pytest
from rest_framework.authtoken.models import Token

from classifier.models import ModelVersion
from training.models import TrainingRun


def post(client, url, body=None, **extra):
    return client.post(url, json.dumps(body or {}), content_type="application/json", **extra)


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("post", "/api/training-runs/"),
        ("get", "/api/training-runs/"),
        ("get", "/api/training-runs/1/"),
        ("post", "/api/training-runs/1/cancel/"),
        ("post", "/api/training-runs/1/again/"),
        ("get", "/api/models/"),
        ("post", "/api/models/1/promote/"),
    ],
)
def test_anonymous_and_non_staff_are_refused(client, django_user_model, active_model, method, url):
    response = getattr(client, method)(url, content_type="application/json")
    assert response.status_code in (401, 403) and "error" in response.json()
    user = django_user_model.objects.create_user("someone", password="a-password-for-tests")
    client.force_login(user)
    response = getattr(client, method)(url, content_type="application/json")
    assert response.status_code == 403 and "permission" in response.json()["error"]
    assert TrainingRun.objects.count() == 0


def test_staff_start_watch_and_cancel_a_run(client, staff_user, active_model, monkeypatch):
    from training import tasks

    queued = []
    monkeypatch.setattr(tasks, "enqueue", queued.append)  # the broker has its own tests
    client.force_login(staff_user)
    response = post(client, "/api/training-runs/", {"preset": "quick"})
    assert response.status_code == 202, response.content
    run = response.json()
    assert run["status"] == "queued" and run["epochs"] == 2 and run["limit"] == 4000
    assert [r.pk for r in queued] == [run["id"]]
    answer = client.get(f"/api/training-runs/{run['id']}/").json()
    assert (answer["progress"], answer["progress_percent"], answer["progress_text"]) == (
        0.0,
        0,
        "0%",
    )
    cancelled = post(client, f"/api/training-runs/{run['id']}/cancel/").json()
    assert cancelled["status"] == "cancelled"
    again = post(client, f"/api/training-runs/{run['id']}/cancel/")
    assert again.status_code == 400 and "already finished" in again.json()["error"]


def test_a_finished_run_runs_again_with_the_same_settings(client, staff_user, db, monkeypatch):
    from training import tasks

    queued = []
    monkeypatch.setattr(tasks, "enqueue", queued.append)
    client.force_login(staff_user)
    body = {"preset": "kaggle-cnn", "epochs": 4, "limit": 300, "use_drawings": False}
    first = post(client, "/api/training-runs/", body).json()
    # still queued: not yet
    early = post(client, f"/api/training-runs/{first['id']}/again/")
    assert early.status_code == 400 and "still queued" in early.json()["error"]
    TrainingRun.objects.filter(pk=first["id"]).update(status="failed", error="worker died")
    response = post(client, f"/api/training-runs/{first['id']}/again/")
    assert response.status_code == 202, response.content
    again = response.json()
    assert again["id"] != first["id"] and again["status"] == "queued"
    same = ("preset", "architecture", "recipe", "epochs", "batch_size", "learning_rate",
            "limit", "use_drawings", "seed", "augment")  # fmt: skip
    assert {k: again[k] for k in same} == {k: first[k] for k in same}
    assert again["recipe"] == "kaggle-cnn" and again["epochs"] == 4
    assert [r.pk for r in queued] == [first["id"], again["id"]]
    assert post(client, "/api/training-runs/999/again/").status_code == 404


def test_bad_run_configurations_are_refused(client, staff_user, db):
    client.force_login(staff_user)
    for body, fragment in [
        ({"preset": "gigantic"}, "preset"),
        ({"epochs": 0}, "epochs"),
        ({"architecture": "resnet"}, "architecture"),
        ({"use_mnist": False, "use_pendigits": False, "use_drawings": False}, "data source"),
        ({"learning_rate": "fast"}, "learning_rate"),
        ({"drawings_share": False}, "drawings_share"),  # a boolean is not 0.0
        ({"learning_rate": True}, "learning_rate"),
    ]:
        response = post(client, "/api/training-runs/", body)
        assert response.status_code == 400 and fragment in response.json()["error"], body
    assert TrainingRun.objects.count() == 0


def test_models_list_promote_and_roll_back_with_a_token(client, staff_user, active_model):
    from classifier.registry import BOOTSTRAP_DIR, register_directory

    second = register_directory(BOOTSTRAP_DIR, activate=True, note="second")
    token = Token.objects.create(user=staff_user)
    auth = {"HTTP_AUTHORIZATION": f"Token {token.key}"}
    listed = client.get("/api/models/", **auth).json()
    assert [m["version"] for m in listed] == [2, 1] and listed[0]["status"] == "active"
    refused = post(client, "/api/models/1/promote/", {}, **auth)
    assert refused.status_code == 400 and "reason" in refused.json()["error"]
    rolled_back = post(client, "/api/models/1/promote/", {"reason": "v2 misreads sevens"}, **auth)
    assert rolled_back.status_code == 200 and rolled_back.json()["status"] == "active"
    second.refresh_from_db()
    assert second.status == "retired"
    promotion = ModelVersion.objects.get(version=1).promotions.first()
    assert (promotion.reason, promotion.promoted_by, promotion.previous) == (
        "v2 misreads sevens",
        staff_user,
        second,
    )
