"""What makes a run fast on the CPU: the one-cycle schedule, the sprint preset and
digitnet's strided start (the figures are in ``benchmarks/train_speed.py``)."""

from __future__ import annotations

import keras
import pytest

from training import architectures
from training.config import TrainConfig, preset_fields
from training.recipes import RECIPES
from training.trainer import optimizer


def test_one_cycle_climbs_for_30_percent_then_anneals_to_a_thousandth():
    sprint = RECIPES["sprint"]
    assert sprint.schedule == "one-cycle"
    rate = optimizer(sprint, 6e-3, steps_per_epoch=100, epochs=1).learning_rate  # the schedule
    schedule = optimizer(sprint, 6e-3, steps_per_epoch=100, epochs=1)._learning_rate
    assert float(rate) == pytest.approx(6e-3 / 25)
    assert float(schedule(0)) == pytest.approx(6e-3 / 25)
    assert float(schedule(15)) == pytest.approx((6e-3 / 25 + 6e-3) / 2, rel=0.01)
    assert float(schedule(30)) == pytest.approx(6e-3)
    assert float(schedule(70)) < 6e-3 / 2 < float(schedule(60))  # half-way down at 65
    assert float(schedule(100)) == pytest.approx(6e-6, rel=0.01)


def test_the_sprint_preset_is_our_model_for_one_epoch_of_every_source():
    config = TrainConfig.from_run_fields(**preset_fields("sprint"))
    assert (config.architecture, config.recipe, config.epochs) == ("digitnet", "sprint", 1)
    assert config.learning_rate == RECIPES["sprint"].learning_rate
    assert set(config.sources) == {"mnist", "pendigits", "drawings"} and config.augment


def test_digitnet_starts_strided_and_stays_small():
    model = architectures.build("digitnet")
    first = next(layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D))
    assert first.strides == (2, 2)
    assert model.layers[-1].output.shape == (None, 10)
    assert 150_000 < model.count_params() < 200_000
