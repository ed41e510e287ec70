"""Training runs with eager tasks: claim, progress, cancel, gate, registry."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from classifier import runtime
from classifier.models import ModelVersion
from collector.models import Drawing, NewDrawing
from training import runs, sources, tasks
from training.models import TrainingRun, worker_id
from training.sources import variants

pytestmark = pytest.mark.slow


def test_a_run_trains_registers_and_passes_the_gate(
    active_model, eager_celery, tiny_run_config, lenient_gate, staff_user
):
    # given the bootstrap model serving, and a run queued by staff
    run = tasks.start_run(**tiny_run_config, started_by=staff_user)
    # then (eagerly) it ran to the end
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    assert run.device.startswith(("CPU", "GPU")) and run.worker
    assert run.progress == 1.0 and run.epoch == 1 and run.loss is not None
    assert run.gate["passed"] is True
    assert "mnist" in run.manifest and "epoch 1/1" in run.log_tail
    # a new version, promoted by the gate and recorded in the audit trail
    version = run.model_version
    assert version.status == "active" and version.version == 2
    active_model.refresh_from_db()
    assert active_model.status == "retired"
    promotion = version.promotions.get()
    assert promotion.previous == active_model and promotion.promoted_by == staff_user
    assert "passed the gate" in promotion.reason
    assert {p.rsplit("/", 1)[-1] for p in version.plots} >= {"learning-curves.png"}
    # and serving swaps to it
    assert runtime.active_model().version == 2


def test_a_candidate_under_the_floor_is_rejected_and_nothing_changes(
    active_model, eager_celery, tiny_run_config, settings
):
    settings.DIGITS_GATE_FLOORS = {"mnist-test": 0.999, "default": 0.999}
    run = tasks.start_run(**tiny_run_config)
    run.refresh_from_db()
    assert run.status == "succeeded" and run.gate["passed"] is False
    assert run.model_version.status == "rejected"
    assert "under the floor" in run.model_version.rejection_reasons[0]
    assert ModelVersion.active() == active_model


def test_a_candidate_worse_than_the_active_model_is_rejected_by_name(
    active_model, eager_celery, tiny_run_config, settings
):
    # given floors it can reach but the real rules against the bootstrap model
    settings.DIGITS_GATE_FLOORS = {"mnist-test": 0.5, "default": 0.5}
    settings.DIGITS_GATE_SIGNIFICANCE, settings.DIGITS_GATE_MIN_EFFECT = 0.01, 0.002
    # when a one-epoch MLP is trained
    run = tasks.start_run(**tiny_run_config)
    run.refresh_from_db()
    # then the gate compared both on the same MNIST test images and said no
    assert run.status == "succeeded" and run.gate["passed"] is False
    reasons = run.model_version.rejection_reasons
    assert any(r.startswith("mnist-test:") and "worse than the active model" in r for r in reasons)
    assert ModelVersion.active() == active_model
    # and the verdict, set by set, is kept with the version and the run
    verdict = run.model_version.gate
    assert verdict == run.gate and verdict["summary"].startswith("rejected: ")
    mnist = next(s for s in verdict["sets"] if s["name"] == "mnist-test")
    assert mnist["judged"] and mnist["result"] == "failed" and mnist["role"] == "real people"
    assert mnist["active"]["lost"] > mnist["active"]["gained"] and mnist["active"]["p_worse"] < 0.01
    # the active model is the bootstrap here: both comparisons are the same images
    assert mnist["bootstrap"] == mnist["active"]


def test_finetune_starts_from_the_active_weights_with_drawings_in_every_batch(
    active_model, eager_celery, lenient_gate, pen_digits, settings
):
    from classifier import canvas
    from training.config import DRAWINGS_FOR_SHARE, preset_fields

    # given enough approved drawings with strokes to take their share of each batch
    settings.DIGITS_AUTO_APPROVE = True
    for digit in pen_digits[:DRAWINGS_FOR_SHARE]:
        strokes = canvas.parse_strokes(
            canvas.strokes_as_json(canvas.timed(canvas.fit_to_canvas(digit.strokes)))
        )
        Drawing.objects.add(
            NewDrawing(
                canvas.render_canvas_png(strokes), digit.label, split="train", strokes=strokes
            )
        )
    # when staff fine-tune (on a little MNIST, to keep the test short)
    fields = {**preset_fields("finetune"), "epochs": 1, "limit": 500, "use_pendigits": False}
    run = tasks.start_run(preset="finetune", **fields)
    run.refresh_from_db()
    # then it began from the active model's weights, in its architecture
    assert run.status == "succeeded", run.error
    metrics = run.model_version.metrics
    assert metrics["started_from"] == "active model"
    assert metrics["architecture"] == active_model.architecture == "digitnet"
    assert "fine-tuning the active model" in run.log_tail
    assert metrics["mixture"]["drawings"] == pytest.approx(fields["drawings_share"])
    # starting from trained weights, one short epoch already reads MNIST well
    assert metrics["tests"]["mnist-test"]["accuracy"] > 0.9
    # and the version carries its calibration
    assert 0.2 <= metrics["calibration"]["temperature"] <= 5
    assert 0.5 <= run.model_version.confidence_threshold <= 0.97
    # and it trained the pen view on the drawings' strokes, fitted the combination
    # with the picture's on validation writers, and scored each view and both
    pen = metrics["pen"]
    assert run.model_version.pen_tflite and run.model_version.load_pen_predictor().reads_pen
    assert pen["n_train"] == DRAWINGS_FOR_SHARE and pen["combination"]["n"] > 0
    assert {"image", "pen", "combined", "n"} <= set(pen["tests"]["ujipen"])
    assert "training the pen view" in run.log_tail
    # and how often ink that is no digit came back "sure", each view and both
    assert {"n", "refused", "image_sure", "pen_sure", "combined_sure"} <= set(pen["not_digits"])
    judged = {s["name"]: s for s in run.model_version.gate["sets"]}
    assert judged["ujipen+pen"]["judged"] and judged["ujipen"]["judged"]


def test_finetune_without_an_active_model_fails_saying_why(db, eager_celery):
    from training.config import preset_fields

    run = tasks.start_run(preset="finetune", **{**preset_fields("finetune"), "limit": 100})
    run.refresh_from_db()
    assert run.status == "failed" and "no model is active" in run.error


def test_a_redelivered_message_does_nothing(active_model, tiny_run_config):
    run = TrainingRun.objects.create(**tiny_run_config, status="succeeded")
    assert runs.execute(run.pk) is None
    run.refresh_from_db()
    assert run.status == "succeeded" and run.model_version is None


def test_a_run_cancelled_before_it_starts(active_model, tiny_run_config):
    run = TrainingRun.objects.create(**tiny_run_config)
    run.cancel()
    assert runs.execute(run.pk) is None
    run.refresh_from_db()
    assert run.status == "cancelled" and run.finished_at is not None


def test_a_run_cancelled_while_it_fits_stops_at_the_next_batch(
    active_model, tiny_run_config, monkeypatch
):
    # given a run of five epochs, and staff who press Cancel once it reports its
    # first batch (the real cancel check is what must notice)
    run = TrainingRun.objects.create(**{**tiny_run_config, "epochs": 5})
    report_batch = TrainingRun.report_batch
    pressed = []

    def staff_cancel_while_fitting(self, *args, **kwargs):
        report_batch(self, *args, **kwargs)
        if not pressed:
            pressed.append(kwargs or args)
            TrainingRun.objects.get(pk=self.pk).cancel()

    monkeypatch.setattr(TrainingRun, "report_batch", staff_cancel_while_fitting)
    # when the worker runs it
    assert runs.execute(run.pk) == "cancelled"
    # then it stopped in its first epoch: no epoch finished, nothing tested or registered
    run.refresh_from_db()
    assert pressed and run.status == "cancelled" and run.model_version is None
    assert (run.epoch, run.step) == (1, 1)
    assert "epoch 1/5" not in run.log_tail and "testing and exporting" not in run.log_tail
    assert ModelVersion.objects.count() == 1


def test_a_cancel_after_the_last_epoch_is_honoured(active_model, tiny_run_config, monkeypatch):
    """Cancel pressed at 100 % (while the run tests and exports): nothing is registered."""
    from training import gate

    run = TrainingRun.objects.create(**tiny_run_config)
    decide = gate.decide

    def cancel_while_testing(*args, **kwargs):
        TrainingRun.objects.get(pk=run.pk).cancel()  # staff press Cancel now
        return decide(*args, **kwargs)

    monkeypatch.setattr(gate, "decide", cancel_while_testing)
    assert runs.execute(run.pk) == "cancelled"
    run.refresh_from_db()
    assert run.status == "cancelled" and run.model_version is None
    assert ModelVersion.objects.count() == 1 and ModelVersion.active() == active_model


def test_a_cancel_after_the_run_finished_says_so(active_model, tiny_run_config):
    from training.models import RunFinished

    run = TrainingRun.objects.create(**tiny_run_config, status="succeeded")
    with pytest.raises(RunFinished, match="already finished"):
        run.cancel()
    run.refresh_from_db()
    assert not run.cancel_requested


def test_loading_reports_its_steps_and_can_be_cancelled(active_model, tiny_run_config, monkeypatch):
    seen = []
    load = sources.load_training_data

    def watched(config, report):
        def spy(step, done, total):
            report(step, done, total)
            row = TrainingRun.objects.get()
            seen.append((row.phase, row.phase_detail, row.phase_done, row.phase_total))

        return load(config, spy)

    monkeypatch.setattr(sources, "load_training_data", watched)
    run = TrainingRun.objects.create(**tiny_run_config)
    assert runs.execute(run.pk) == "succeeded"
    assert seen and {phase for phase, *_ in seen} == {"loading"}
    assert any(detail == "reading MNIST" for _, detail, *_ in seen)
    run.refresh_from_db()
    # then it trained, and ended testing and exporting (the admin's bar says so)
    assert run.phase == "testing" and "reading MNIST" in run.log_tail
    assert "testing and exporting the model" in run.log_tail

    # a cancel while loading stops the run at the next step
    def cancelled_while_loading(config, report):
        TrainingRun.objects.filter(status="running").update(cancel_requested=True)
        report("reading MNIST", 0, 0)
        raise AssertionError("loading went on after a cancel")

    monkeypatch.setattr(sources, "load_training_data", cancelled_while_loading)
    second = TrainingRun.objects.create(**tiny_run_config)
    assert runs.execute(second.pk) == "cancelled"


def test_variant_rendering_reports_counts(pen_digits):
    from classifier import canvas

    jobs = [
        (canvas.fit_to_canvas(d.strokes), d.label, 2, (0, i), 0.0, 0.0, None)
        for i, d in enumerate(pen_digits[:300])
    ]
    reports = []
    variants.build_variants(jobs, lambda step, done, total: reports.append((step, done, total)))
    assert reports[0][1:] == (0, 300) and reports[-1][1:] == (300, 300)
    assert [done for _, done, _ in reports] == sorted(done for _, done, _ in reports)
    assert len(reports) >= 3  # it moves while it renders, not only at the ends


def test_a_failing_run_ends_failed_with_the_error(active_model, tiny_run_config):
    run = TrainingRun.objects.create(**tiny_run_config, kaggle_csv="nonexistent/train.csv")
    assert runs.execute(run.pk) == "failed"
    run.refresh_from_db()
    assert run.status == "failed" and "was not found under the datasets folder" in run.error
    assert ModelVersion.objects.count() == 1


@pytest.mark.parametrize("kind", ["host", "gpu"])
def test_a_run_out_of_memory_ends_failed_and_says_so(
    active_model, tiny_run_config, monkeypatch, kind
):
    """A worker killed by the kernel's OOM killer is the killed-worker test with a real
    worker; this is the allocation that fails inside the process."""
    import numpy as np
    import tensorflow as tf

    from training import trainer

    def exhausted(*args, **kwargs):
        if kind == "host":
            np.ones((1 << 50,), dtype=np.float32)  # 4 PiB: NumPy raises a MemoryError
        raise tf.errors.ResourceExhaustedError(None, None, "OOM when allocating tensor")

    monkeypatch.setattr(trainer, "train", exhausted)
    run = TrainingRun.objects.create(**tiny_run_config)
    assert runs.execute(run.pk) == "failed"
    run.refresh_from_db()
    expected = "Out of memory" if kind == "host" else "Out of GPU memory"
    assert run.status == "failed" and run.error.startswith(expected + " while training")
    assert ModelVersion.active() == active_model and ModelVersion.objects.count() == 1


def test_a_run_owned_by_a_dead_process_is_failed(db, tiny_run_config):
    run = TrainingRun.objects.create(
        **tiny_run_config, status="running", worker=f"{worker_id().rsplit(':', 1)[0]}:999999"
    )
    assert TrainingRun.objects.fail_orphaned() == 1
    run.refresh_from_db()
    assert run.status == "failed" and "died" in run.error


def test_a_run_whose_machine_went_silent_is_failed_when_staff_look(
    client, staff_user, tiny_run_config, settings
):
    """A worker on another machine that vanished (power, network): its run stops
    sending heartbeats and is failed with the reason, while a live one is left alone."""
    from datetime import timedelta

    from django.utils import timezone

    settings.DIGITS_RUN_STALE_SECONDS = 300
    now = timezone.now()
    silent = TrainingRun.objects.create(
        **tiny_run_config, status="running", worker="gpu-box-7:4242",
        heartbeat_at=now - timedelta(minutes=12),
    )  # fmt: skip
    alive = TrainingRun.objects.create(
        **tiny_run_config, status="running", worker="gpu-box-8:4242",
        heartbeat_at=now - timedelta(seconds=40),
    )  # fmt: skip
    client.force_login(staff_user)
    answer = client.get(f"/api/training-runs/{silent.pk}/").json()
    assert answer["status"] == "failed"
    assert answer["error"].startswith(
        "No heartbeat from its worker (gpu-box-7:4242) for 12 minutes"
    )
    alive.refresh_from_db()
    assert alive.status == "running"
    page = client.get(f"/admin/training/trainingrun/{silent.pk}/change/").content.decode()
    assert "No heartbeat from its worker" in page


@pytest.mark.django_db(transaction=True)  # the heartbeat writes from its own thread
def test_a_running_run_keeps_beating_through_every_phase(tiny_run_config, monkeypatch):
    """Between progress writes (loading data, evaluating) the heartbeat thread still
    marks the run alive, so a slow phase is never mistaken for a vanished worker."""
    import time as clock

    monkeypatch.setattr(runs, "HEARTBEAT_SECONDS", 0.1)
    beats = []

    def slow_loading(config, report=None):
        for _ in range(6):
            clock.sleep(0.2)
            beats.append(TrainingRun.objects.get().heartbeat_at)
        raise RuntimeError("stop here")

    monkeypatch.setattr(sources, "load_training_data", slow_loading)
    run = TrainingRun.objects.create(**tiny_run_config)
    assert runs.execute(run.pk) == "failed"
    assert len(set(beats)) >= 4, beats  # it moved while nothing else wrote the row


def test_no_run_is_left_queued_when_the_broker_is_down(db, tiny_run_config, tmp_path):
    from digits_site.celery import app

    def use_broker(url: str) -> None:
        app.conf.broker_url = url
        # Connection and producer pools are bound to a URL: drop them (as Celery
        # itself does after a fork) so the next publish uses this one.
        app._pool = None
        app.amqp._producer_pool = None

    previous = app.conf.broker_url
    use_broker(f"redis+socket://{tmp_path}/no-redis-here.sock")
    try:
        with pytest.raises(tasks.BrokerUnavailable, match="unreachable"):
            tasks.start_run(**tiny_run_config)
    finally:
        use_broker(previous)
    assert TrainingRun.objects.count() == 0


def test_retrain_command_waits_and_prints_the_result(
    active_model, eager_celery, lenient_gate, monkeypatch, tiny_run_config
):
    from training import config

    monkeypatch.setitem(config.PRESETS, "quick", tiny_run_config)
    out = io.StringIO()
    call_command("retrain", "--preset", "quick", "--wait", stdout=out, verbosity=0)
    run = TrainingRun.objects.get()  # its id is the database's (PostgreSQL's keeps counting)
    assert out.getvalue().strip().splitlines()[-1] == f"run={run.pk} status=succeeded version=2"


def test_retrain_command_fails_loudly_when_the_run_fails(
    active_model, eager_celery, monkeypatch, tiny_run_config
):
    from training import config

    monkeypatch.setitem(config.PRESETS, "quick", {**tiny_run_config, "kaggle_csv": "/nope.csv"})
    out = io.StringIO()
    with pytest.raises(CommandError, match="ended failed"):
        call_command("retrain", "--preset", "quick", "--wait", stdout=out, verbosity=0)
    run = TrainingRun.objects.get()
    assert out.getvalue().strip().splitlines()[-1] == f"run={run.pk} status=failed version=-"


def test_retrain_progress_line_has_no_stray_comma(db, tiny_run_config):
    from training.management.commands.retrain import BAR_FORMAT

    run = TrainingRun(**tiny_run_config, status="running", phase="loading",
                      phase_detail="rendering pen-digit variants", phase_done=1200,
                      phase_total=7494)  # fmt: skip
    assert run.progress_text == "Loading data: rendering pen-digit variants 1,200 of 7,494"
    run.phase, run.steps_per_epoch, run.epoch, run.epochs = "training", 10, 2, 5
    assert run.progress_text == "20% · epoch 2 of 5"
    bar = io.StringIO()
    from tqdm import tqdm

    with tqdm(total=100, file=bar, bar_format=BAR_FORMAT) as shown:
        shown.set_description_str(run.progress_text)
    assert "| 20% · epoch 2 of 5" in bar.getvalue() and ", 20%" not in bar.getvalue()


def test_the_progress_sentence_is_the_runs_own(db, tiny_run_config):
    # given a run in each phase
    run = TrainingRun(**tiny_run_config, status="running", phase="loading",
                      phase_detail="reading MNIST", eta_seconds=12.2)  # fmt: skip
    # then its words and bar value say what it does, with the time left while it runs
    assert (run.progress_text, run.progress_percent) == (
        "Loading data: reading MNIST · about 13 s left",
        None,
    )
    run.phase, run.eta_seconds = TrainingRun.Phase.TESTING, 200
    assert (run.progress_text, run.progress_percent) == (
        "Training done · testing and exporting the model · about 3 min left",
        100,
    )
    run.status, run.phase = TrainingRun.Status.SUCCEEDED, TrainingRun.Phase.TESTING
    assert (run.progress_text, run.progress_percent) == ("100%", 100)
