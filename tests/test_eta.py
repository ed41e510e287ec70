"""The time a run has left (``training.progress.RemainingTime``): right from the
first epoch, validation and testing counted."""

from __future__ import annotations

import pytest

from training import progress, trainer
from training.config import TrainConfig
from training.progress import RemainingTime
from training.sources import Images, TrainingData
from training.sources import mnist as mnist_source


def test_the_eta_leaves_out_the_first_step_and_counts_validation_and_testing():
    remaining = RemainingTime(epochs=3, steps_per_epoch=10, batch_size=100, val_images=1000,
                              test_images=2000)  # fmt: skip
    clock = 100.0
    remaining.step_done(clock + 8.0)  # the first step traces and compiles: 8 s
    assert remaining.estimate(1, 1) is None
    clock += 8.0
    for _ in range(9):  # then 0.5 s a step
        clock += 0.5
        remaining.step_done(clock)
    assert remaining.step_seconds == pytest.approx(0.5)
    # before any validation: scoring is a third of a step's time per image
    per_image = 0.5 / 100 / 3
    expected = 20 * 0.5 + 3 * 1000 * per_image + remaining.finishing_seconds()
    assert remaining.estimate(1, 10) == pytest.approx(expected)
    assert remaining.finishing_seconds() == pytest.approx(
        RemainingTime.EXPORT_SECONDS + (3 * 2000 + 1000) * per_image
    )
    # validation took 2 s: it is now counted as measured, and not as a step's time
    remaining.validated(2.0)
    clock += 2.0 + 0.5
    remaining.step_done(clock)
    assert remaining.step_seconds == pytest.approx(0.5)
    finishing = RemainingTime.EXPORT_SECONDS + 2.0 / 1000 * (3 * 2000 + 1000)
    assert remaining.estimate(2, 1) == pytest.approx(19 * 0.5 + 2 * 2.0 + finishing)
    assert remaining.estimate(3, 10) == pytest.approx(2.0 + finishing)


class Recorder(progress.Callback):
    def __init__(self):
        self.etas, self.at_epoch, self.testing = [], [], None

    def on_batch(self, epoch, step, steps_per_epoch, logs):
        self.etas.append(self.eta_seconds)

    def on_epoch(self, epoch, logs):
        self.at_epoch.append(self.eta_seconds)

    def on_testing(self):
        self.testing = self.eta_seconds


@pytest.mark.slow
def test_a_run_reports_its_eta_from_the_first_epoch_to_testing(tmp_path):
    mnist = mnist_source.load_mnist()
    data = TrainingData(
        train=Images(mnist.train.x[:2000], mnist.train.y[:2000]),
        val=Images(mnist.train.x[-300:], mnist.train.y[-300:]),
        tests={"mnist-test": Images(mnist.test.x[:300], mnist.test.y[:300])},
    )
    recorder = Recorder()
    config = TrainConfig(architecture="mlp", epochs=3, batch_size=100, augment=False)
    trainer.train(config, tmp_path / "run", verbose=0, data=data, callback=recorder)
    assert recorder.etas[0] is None  # nothing measured yet after the compiling step
    assert all(eta is not None and eta > 0 for eta in recorder.etas[2:])
    assert recorder.at_epoch[0] > recorder.at_epoch[1] > recorder.at_epoch[2]
    # after the last epoch only testing and export are left, and the run says so
    assert recorder.testing == pytest.approx(recorder.at_epoch[2], rel=0.5)
    assert recorder.testing >= RemainingTime.EXPORT_SECONDS
