"""Fault: the newly promoted version's artifact is missing or corrupt.

Web processes keep answering with the previous version (a process that starts
now falls back to it too), the admin and the API say what is wrong, and a
version that cannot be served is never promoted in the first place.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from classifier import runtime
from classifier.models import ModelVersion, Promotion
from classifier.registry import BOOTSTRAP_DIR, ensure_active_model, register_directory

from .conftest import data_url


def predict(client, png: bytes):
    body = {"image": data_url(png)}
    return client.post("/api/predict/", json.dumps(body), content_type="application/json")


def break_artifact(version: ModelVersion, how: str) -> bytes:
    path = Path(version.tflite.path)
    original = path.read_bytes()
    if how == "missing":
        path.unlink()
    else:
        path.write_bytes(original[: len(original) // 2])
    return original


@pytest.fixture
def second_version(active_model):
    return register_directory(BOOTSTRAP_DIR, activate=False, note="retrained")


@pytest.mark.parametrize("how", ["missing", "corrupt"])
def test_a_broken_promoted_artifact_keeps_the_previous_version_serving(
    client, staff_user, second_version, canvas_png, how, monkeypatch
):
    assert predict(client, canvas_png(3)).json()["model_version"] == 1
    second_version.promote(reason="passed the gate")
    original = break_artifact(second_version, how)

    # This web process keeps answering with version 1 …
    response = predict(client, canvas_png(3))
    assert response.status_code == 200
    assert response.json()["model_version"] == 1 and response.json()["digit"] == 3
    # … and so does one that starts now, with nothing in memory.
    runtime.reset()
    response = predict(client, canvas_png(5))
    assert response.status_code == 200 and response.json()["model_version"] == 1

    second_version.refresh_from_db()
    reason = "cannot be read" if how == "missing" else "checksum no longer matches"
    assert reason in second_version.serving_error
    assert second_version.is_active  # nothing was silently rolled back

    # Staff see it on the admin's front page, in the versions list and in the API.
    client.force_login(staff_user)
    front = client.get("/admin/").content.decode()
    assert 'id="serving-problem"' in front
    assert "Version 2 is active but cannot be served" in front and reason in front
    listing = client.get("/admin/classifier/modelversion/").content.decode()
    assert "Version 2 is active but cannot be served" in listing
    assert "cannot be served</strong>" in listing
    api = {v["version"]: v for v in client.get("/api/models/").json()}
    assert reason in api[2]["serving_error"] and api[1]["serving_error"] == ""

    # Put the artifact back: the next retry serves version 2 and the warning goes.
    monkeypatch.setattr(runtime, "RETRY_FAILED_SECONDS", 0)
    Path(second_version.tflite.path).write_bytes(original)
    assert predict(client, canvas_png(3)).json()["model_version"] == 2
    second_version.refresh_from_db()
    assert second_version.serving_error == ""
    assert 'id="serving-problem"' not in client.get("/admin/").content.decode()


def test_with_no_loadable_version_predictions_are_a_clear_503(client, active_model, canvas_png):
    Path(active_model.tflite.path).unlink()
    response = predict(client, canvas_png(3))
    assert response.status_code == 503
    assert "version 1" in response.json()["error"] and "cannot be read" in response.json()["error"]


def test_a_version_that_cannot_be_served_is_not_promoted(
    client, staff_user, active_model, second_version
):
    break_artifact(second_version, "corrupt")
    client.force_login(staff_user)
    response = client.post(
        "/api/models/2/promote/", {"reason": "try it"}, content_type="application/json"
    )
    assert response.status_code == 409
    assert "Version 2 cannot be served" in response.json()["error"]

    page = client.post(
        "/admin/classifier/modelversion/",
        {"action": "promote_selected", "_selected_action": [second_version.pk]},
        follow=True,
    ).content.decode()
    assert "Nothing changed. Version 2 cannot be served" in page

    assert ModelVersion.active() == active_model
    assert Promotion.objects.filter(version=second_version).count() == 0


def test_ensure_model_skips_a_version_whose_artifact_is_gone(db):
    first, _ = ensure_active_model()
    second = register_directory(BOOTSTRAP_DIR, activate=True)
    ModelVersion.objects.update(status=ModelVersion.Status.RETIRED)
    Path(second.tflite.path).unlink()
    version, created = ensure_active_model()
    assert not created and version == first and version.is_active
