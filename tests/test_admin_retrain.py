"""In real Chromium: staff start a run from the admin and watch it to the end."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings

from training.models import TrainingRun

from .conftest import launched_chromium, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def admin_page(celery_worker_process, live_server, staff_user, sync_browser_thread):
    from classifier.registry import ensure_active_model

    ensure_active_model()
    with launched_chromium() as browser:
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        sign_in(page, live_server.url)
        yield page, live_server.url


def test_staff_start_a_run_from_the_admin_and_watch_it_finish(admin_page):
    page, url = admin_page
    # given the Retrain form
    page.goto(url + "/admin/training/trainingrun/add/")
    page.select_option("#id_preset", "")
    page.get_by_text("Advanced").click()
    page.select_option("#id_architecture", "mlp")
    page.fill("#id_epochs", "3")
    page.fill("#id_limit", "2000")
    for box in ("#id_use_pendigits", "#id_use_drawings", "#id_augment"):
        page.uncheck(box)
    # when they start it
    page.click("input[name=_save]")
    # then the run's page follows it to the end
    assert "/admin/training/trainingrun/" in page.url and "/change/" in page.url
    page.wait_for_function(
        "() => document.body && document.body.dataset.runFinished !== undefined", timeout=120_000
    )
    page.wait_for_load_state()
    page.wait_for_function(
        "() => document.body && document.body.dataset.runFinished === 'succeeded'", timeout=20_000
    )
    assert page.locator("progress.run-progress").get_attribute("value") == "100"
    assert "epoch 3/3" in page.locator(".field-log_tail").inner_text()
    run = TrainingRun.objects.get()
    assert run.status == "succeeded" and run.started_by.username == "admin"
    assert page.locator(".field-model_version_link a").inner_text().startswith("v2")
    screenshots = Path(settings.DIGITS_DATA_DIR) / "screenshots"
    screenshots.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=screenshots / "admin-training-run.png", full_page=True)


def test_the_run_page_shows_loading_progress_and_its_live_status(staff_browser, tiny_run_config):
    page, url = staff_browser
    run = TrainingRun.objects.create(**tiny_run_config)  # queued: no worker here
    page.goto(f"{url}/admin/training/trainingrun/{run.pk}/change/")
    assert "queued" in page.locator("#content > h2").inner_text()
    # the worker claims it and renders its variant pools
    TrainingRun.objects.filter(pk=run.pk).update(
        status="running", phase="loading", phase_detail="rendering pen-digit variants",
        phase_done=1200, phase_total=7494, eta_seconds=95,
    )  # fmt: skip
    text = page.locator(".run-progress-text")
    page.wait_for_function(
        "() => document.querySelector('.run-progress-text').textContent.startsWith('Loading')"
    )
    assert text.inner_text() == (
        "Loading data: rendering pen-digit variants 1,200 of 7,494 · about 2 min left"
    )
    assert page.locator("progress.run-progress").get_attribute("value") == "16"
    assert "running" in page.locator("#content > h2").inner_text()
    # then it trains: the bar follows the epochs
    TrainingRun.objects.filter(pk=run.pk).update(
        phase="training", epoch=2, step=5, steps_per_epoch=10, epochs=4, eta_seconds=30
    )
    page.wait_for_function(
        "() => document.querySelector('.run-progress-text').textContent.includes('epoch')"
    )
    assert text.inner_text() == "38% · epoch 2 of 4 · about 30 s left"
    # then the last epoch is done: the model is tested and exported, still counted down
    TrainingRun.objects.filter(pk=run.pk).update(phase="testing", epoch=4, step=10, eta_seconds=9)
    page.wait_for_function(
        "() => document.querySelector('.run-progress-text').textContent.includes('testing')"
    )
    assert text.inner_text() == "Training done · testing and exporting the model · about 9 s left"
    assert page.locator("progress.run-progress").get_attribute("value") == "100"
