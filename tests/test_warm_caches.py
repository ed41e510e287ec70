"""A fresh instance is ready to fine-tune: ``manage.py serve`` queues the warm-up on
the background queue, which loads exactly what the first ``finetune`` will."""

from __future__ import annotations

import io
import subprocess
import sys

from training import tasks
from training.config import TrainConfig, preset_fields


def test_warm_caches_loads_what_the_preset_will_and_times_each_step(monkeypatch):
    from django.core.management import call_command

    from training import sources

    loaded: list[TrainConfig] = []

    def load(config, report):
        loaded.append(config)
        report("rendering pen-digit variants (first run only)", 0, 10)
        report("rendering pen-digit variants (first run only)", 5, 10)
        report("reading approved drawings", 0, 0)

    monkeypatch.setattr(sources, "load_training_data", load)
    out = io.StringIO()
    call_command("warm_caches", stdout=out)
    fields = {k: v for k, v in preset_fields("finetune").items() if k != "preset"}
    assert loaded == [TrainConfig.from_run_fields(**fields)]
    lines = out.getvalue().splitlines()
    assert [line.split(" s  ")[1] for line in lines[:2]] == [
        "rendering pen-digit variants (first run only)",
        "reading approved drawings",
    ]
    assert lines[-1].startswith("warm in ") and lines[-1].endswith("(finetune)")


def test_the_task_warms_in_a_process_of_its_own(monkeypatch):
    """A Celery worker's child is daemonic and may start no rendering processes: the
    task hands the work to ``manage.py warm_caches``, which may."""
    ran: list[list[str]] = []

    def run(command, **kwargs):
        ran.append(command)
        return subprocess.CompletedProcess(command, 0, "warm in 1.0 s (finetune)\n", "")

    monkeypatch.setattr(tasks.subprocess, "run", run)
    assert tasks.warm_caches() == 0
    (command,) = ran
    assert command[0] == sys.executable and command[1].endswith("manage.py")
    assert command[2:] == ["warm_caches", "--preset", "finetune", "--background"]


def test_it_runs_on_the_background_queue_not_the_training_one():
    from digits_site.celery import app

    route = app.amqp.router.route({}, "training.background.warm_caches")
    assert route["queue"].name == "background"
    assert app.amqp.router.route({}, "training.tasks.run_training")["queue"].name == "training"


def test_queueing_it_without_redis_changes_nothing(settings, tmp_path):
    from tests.conftest import use_broker

    use_broker(f"redis+socket://{tmp_path / 'gone.sock'}")
    try:
        assert tasks.warm_caches_soon() is False
    finally:
        use_broker(settings.CELERY_BROKER_URL)
