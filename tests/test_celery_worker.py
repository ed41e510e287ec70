"""A real Redis and a real Celery worker: train, gate, serve; a worker killed mid-run;
Redis going away and coming back."""

from __future__ import annotations

import json
import os
import signal

import pytest

from classifier.models import ModelVersion
from classifier.registry import ensure_active_model
from collector.models import Drawing, NewDrawing
from training.models import TrainingRun

from .conftest import data_url, wait_for

pytestmark = pytest.mark.slow


def start(client, config) -> int:
    response = client.post(
        "/api/training-runs/", json.dumps(config), content_type="application/json"
    )
    assert response.status_code == 202, response.content
    return response.json()["id"]


def finished(run_id: int) -> TrainingRun | None:
    run = TrainingRun.objects.get(pk=run_id)
    return run if run.is_finished else None


def test_a_queued_run_is_trained_by_the_worker_gated_and_served(
    celery_worker_process, client, staff_user, tiny_run_config, canvas_png
):
    # given the bootstrap model serving
    ensure_active_model()
    client.force_login(staff_user)
    # when staff queue a tiny run and the worker takes it
    run_id = start(client, tiny_run_config)
    run = wait_for(lambda: finished(run_id), 180, "the run to finish")
    # then it succeeded, passed the gate and its version serves predictions
    assert run.status == "succeeded", run.error
    assert run.gate["passed"] and run.model_version.status == "active"
    assert run.worker.rsplit(":", 1)[-1] != str(os.getpid())  # trained in the worker
    answer = client.post(
        "/api/predict/",
        json.dumps({"image": data_url(canvas_png(2))}),
        content_type="application/json",
    )
    assert answer.json()["model_version"] == run.model_version.version == 2


def test_staff_cancel_a_run_while_the_worker_trains_it(
    celery_worker_process, client, staff_user, tiny_run_config
):
    # given the bootstrap model serving and a long run that the worker is fitting
    ensure_active_model()
    client.force_login(staff_user)
    run_id = start(client, {**tiny_run_config, "epochs": 200})
    wait_for(
        lambda: TrainingRun.objects.filter(pk=run_id, phase="training", step__gt=0).exists(),
        120,
        "the worker to start fitting",
    )
    # when staff cancel it through the API
    response = client.post(f"/api/training-runs/{run_id}/cancel/")
    assert response.status_code == 200, response.content
    # then the worker stops fitting within seconds: cancelled, nothing registered
    run = wait_for(lambda: finished(run_id), 60, "the run to stop")
    assert run.status == "cancelled" and run.model_version is None, run.log_tail
    assert run.epoch < 200 and "testing and exporting" not in run.log_tail
    assert ModelVersion.objects.count() == 1


def test_finetune_through_the_worker_learns_from_contributions_and_serves(
    celery_worker_process, client, staff_user, pen_digits
):
    from classifier import canvas
    from training.config import DRAWINGS_FOR_SHARE

    # given the bootstrap model serving, and contributions with their strokes (some
    # through the API, within one person's rate limit; the rest stored directly)
    ensure_active_model()
    many = DRAWINGS_FOR_SHARE + 25  # most go to the train split, enough for the share
    for index, digit in enumerate(pen_digits[:many]):
        strokes = canvas.strokes_as_json(canvas.timed(canvas.fit_to_canvas(digit.strokes)))
        png = canvas.render_canvas_png(canvas.parse_strokes(strokes))
        if index >= 10:
            Drawing.objects.add(NewDrawing(png, digit.label, strokes=canvas.parse_strokes(strokes)))
            continue
        response = client.post(
            "/api/drawings/",
            json.dumps({"image": data_url(png), "label": digit.label, "strokes": strokes}),
            content_type="application/json",
        )
        assert response.status_code == 201, response.content
    assert Drawing.objects.filter(strokes__isnull=False).count() == many

    Drawing.objects.update(status="approved")  # staff approve them
    client.force_login(staff_user)
    # when staff ask for the finetune preset (kept tiny: a little MNIST, no pen set)
    run_id = start(
        client, {"preset": "finetune", "epochs": 1, "limit": 500, "use_pendigits": False}
    )
    run = wait_for(lambda: finished(run_id), 240, "the fine-tuning run to finish")
    # then the worker fine-tuned the active model, with drawings in every batch
    assert run.status == "succeeded", run.error
    metrics = run.model_version.metrics
    assert metrics["started_from"] == "active model" and metrics["mixture"]["drawings"] == 0.25
    assert run.worker.rsplit(":", 1)[-1] != str(os.getpid())
    assert run.gate["passed"] and run.model_version.status == "active"
    answer = client.post(
        "/api/predict/",
        json.dumps({"image": data_url(canvas.render_strokes(pen_digits[0].strokes))}),
        content_type="application/json",
    )
    assert answer.json()["model_version"] == run.model_version.version


def test_a_killed_worker_fails_the_run_and_changes_nothing(
    celery_worker_process, client, staff_user, tiny_run_config
):
    # given a long run under way in the worker
    bootstrap, _ = ensure_active_model()
    client.force_login(staff_user)
    run_id = start(client, {**tiny_run_config, "epochs": 150})
    running = wait_for(
        lambda: TrainingRun.objects.filter(pk=run_id, status="running", epoch__gte=2).first(),
        120,
        "the run to be training",
    )
    # when the process training it is killed (as the OOM killer would)
    os.kill(int(running.worker.rsplit(":", 1)[1]), signal.SIGKILL)
    # then the run ends failed with a reason, and the serving model is unchanged
    run = wait_for(lambda: finished(run_id), 60, "the run to be failed")
    assert run.status == "failed" and "died" in run.error
    assert ModelVersion.active() == bootstrap and ModelVersion.objects.count() == 1
    # and the next run succeeds
    next_id = start(client, tiny_run_config)
    after = wait_for(lambda: finished(next_id), 180, "the next run")
    assert after.status == "succeeded", after.error


def test_while_redis_is_down_people_still_draw_and_contribute_and_runs_resume_after(
    celery_worker_process, client, staff_user, tiny_run_config, canvas_png
):
    # given the app serving, and then its Redis gone
    ensure_active_model()
    celery_worker_process.stop_redis()
    # then predictions and contributions work as before
    answer = client.post(
        "/api/predict/",
        json.dumps({"image": data_url(canvas_png(6))}),
        content_type="application/json",
    )
    assert answer.status_code == 200 and answer.json()["digit"] == 6
    stored = client.post(
        "/api/drawings/",
        json.dumps({"image": data_url(canvas_png(6)), "label": 6}),
        content_type="application/json",
    )
    assert stored.status_code == 201, stored.content
    # and starting a run says why it cannot, leaving no run that would never start
    client.force_login(staff_user)
    refused = client.post(
        "/api/training-runs/", json.dumps(tiny_run_config), content_type="application/json"
    )
    assert refused.status_code == 503
    assert refused.json()["error"] == (
        "The training queue (Redis) is unreachable; no run was started. Try again later."
    )
    assert TrainingRun.objects.count() == 0
    # when Redis is back, the next run is queued, the worker reconnects and trains it
    celery_worker_process.start_redis()
    run_id = start(client, tiny_run_config)
    run = wait_for(lambda: finished(run_id), 180, "the run after Redis came back")
    assert run.status == "succeeded", run.error
