"""A failed training run can be run again from the admin with the same settings."""

from __future__ import annotations


def test_a_failed_run_has_a_run_again_button_that_queues_the_same_settings(
    staff_client, monkeypatch
):
    from training import tasks
    from training.models import TrainingRun

    queued = []
    monkeypatch.setattr(tasks, "enqueue", queued.append)
    failed = TrainingRun.objects.create(
        status="failed", error="its worker died", recipe="vgg-bn", architecture="vgg-bn", epochs=5
    )
    page = staff_client.get(f"/admin/training/trainingrun/{failed.pk}/change/").content.decode()
    assert 'id="run-again"' in page and 'id="cancel-run"' not in page
    response = staff_client.post(f"/admin/training/trainingrun/{failed.pk}/again/")
    again = TrainingRun.objects.exclude(pk=failed.pk).get()
    assert response.status_code == 302 and response["Location"].endswith(f"/{again.pk}/change/")
    assert (again.status, again.recipe, again.architecture, again.epochs) == (
        "queued", "vgg-bn", "vgg-bn", 5,
    )  # fmt: skip
    assert again.started_by.username == "admin" and queued == [again]
    # a queued run has no such button, and its URL refuses
    page = staff_client.get(f"/admin/training/trainingrun/{again.pk}/change/").content.decode()
    assert 'id="run-again"' not in page and 'id="cancel-run"' in page
    staff_client.post(f"/admin/training/trainingrun/{again.pk}/again/")
    assert TrainingRun.objects.count() == 2
