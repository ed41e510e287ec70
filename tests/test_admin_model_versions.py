"""Model versions in the admin: what may be deleted, promoting with a reason and a
confirmation, per-class metrics."""

from __future__ import annotations

from django.core.files.storage import default_storage

from classifier.models import ModelVersion
from classifier.registry import BOOTSTRAP_DIR, register_directory


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
    assert not any(default_storage.exists(name) for name in files if name)
    assert default_storage.exists(newer.tflite.name), "another version's files are kept"
    # the record stays: marked deleted, by whom, with its promotions
    kept = ModelVersion.objects.get(pk=active_model.pk)
    assert kept.status == "deleted" and kept.deleted_by.username == "admin"
    assert kept.deleted_at is not None and kept.artifact_names() == set()
    assert kept.promotions.exists() and ModelVersion.rollback_target() is None


def test_a_deleted_version_keeps_its_history_and_its_number_is_never_reused(
    staff_client, active_model, django_capture_on_commit_callbacks
):
    """Promote a rejected version with the override, roll back, delete it: who
    served it and why stays, and the next version is numbered after it."""
    rejected = _second_version("rejected")
    rejected.promote(reason="override: the gate was wrong about this one")
    active_model.promote(reason="roll back")
    page = staff_client.get(f"/admin/classifier/modelversion/{rejected.pk}/delete/")
    assert b"Its row stays" in page.content and b"Promotion" not in page.content
    with django_capture_on_commit_callbacks(execute=True):
        staff_client.post(f"/admin/classifier/modelversion/{rejected.pk}/delete/", {"post": "yes"})
    gone = ModelVersion.objects.get(pk=rejected.pk)
    assert gone.status == "deleted"
    assert gone.promotions.get().reason == "override: the gate was wrong about this one"
    assert active_model.promotions.filter(previous=gone).exists()  # the rollback's record
    again = register_directory(BOOTSTRAP_DIR, activate=False, note="the next run")
    assert again.version == gone.version + 1
    # nothing is left to delete, and it cannot be served
    assert staff_client.get(f"/admin/classifier/modelversion/{gone.pk}/delete/").status_code in (
        302,
        403,
    )
    page = staff_client.get(f"/admin/classifier/modelversion/{gone.pk}/change/")
    assert page.status_code == 200 and b"deleted" in page.content.lower()


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


def _a_verdict(against: int) -> dict:
    """A real verdict of training.gate: worse on MNIST by 50 lost to 20 gained."""
    import numpy as np

    from training.gate import decide

    truth = np.arange(10_000) % 10
    active, candidate = truth.copy(), truth.copy()
    active[:40] = (truth[:40] + 1) % 10
    candidate[20:40] = (truth[20:40] + 1) % 10
    candidate[100:150] = (truth[100:150] + 1) % 10
    probe = np.zeros(30, int)
    decision = decide({"mnist-test": truth, "probe:dotted-zero": probe},
                      {"mnist-test": candidate, "probe:dotted-zero": probe},
                      {"mnist-test": active, "probe:dotted-zero": probe})  # fmt: skip
    decision.against = against
    return decision.as_dict()


def test_the_verdict_set_by_set_in_the_admin_and_the_api(staff_client, active_model):
    from training.models import TrainingRun

    rejected = _second_version("rejected", ["mnist-test: worse than the active model"])
    verdict = _a_verdict(active_model.version)
    rejected.record_verdict(verdict)
    run = TrainingRun.objects.create(status="succeeded", model_version=rejected, gate=verdict)
    for page in (
        _promote(staff_client, rejected),
        staff_client.get(f"/admin/training/trainingrun/{run.pk}/change/"),
    ):
        html = page.content.decode()
        assert page.status_code == 200
        assert f"Compared with version {active_model.version}, then serving" in html
        assert "<td>mnist-test</td>" in html and "yes (real people)" in html
        assert "99.30 %" in html and "99.60 %" in html  # both accuracies
        assert "+20 / −50" in html and "0.00022" in html  # changed each way, p
        assert "<td>probe:dotted-zero</td>" in html and "no (probe)" in html
    listing = staff_client.get("/api/models/").json()
    stored = next(v for v in listing if v["version"] == rejected.version)["gate"]
    mnist = next(s for s in stored["sets"] if s["name"] == "mnist-test")
    assert (mnist["active"]["gained"], mnist["active"]["lost"]) == (20, 50)
    assert mnist["judged"] and mnist["result"] == "failed"
    run_api = staff_client.get(f"/api/training-runs/{run.pk}/").json()
    assert run_api["gate"]["summary"].startswith("rejected: mnist-test: worse")
