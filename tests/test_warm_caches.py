"""A fresh instance is ready to fine-tune: ``manage.py serve`` queues the warm-up on
the background queue, which loads exactly what the first ``finetune`` will."""

from __future__ import annotations

from training import tasks
from training.config import TrainConfig, preset_fields


def test_warm_caches_loads_what_the_preset_will(monkeypatch):
    from training import sources

    loaded: list[TrainConfig] = []

    def load(config, report):
        loaded.append(config)
        report("rendering pen-digit variants (first run only)", 0, 10)
        report("rendering pen-digit variants (first run only)", 5, 10)
        report("reading approved drawings", 0, 0)

    monkeypatch.setattr(sources, "load_training_data", load)
    steps = tasks.warm_caches()
    fields = {k: v for k, v in preset_fields("finetune").items() if k != "preset"}
    assert loaded == [TrainConfig.from_run_fields(**fields)]
    assert steps == ["rendering pen-digit variants (first run only)", "reading approved drawings"]


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
