"""What makes training fast, and the GPU branches, checked without a GPU (issue 13).

The figures themselves are in ``benchmarks/train_speed.py``; here: the batch-wise
input stream draws what the per-image one drew, the one-cycle schedule, the
sprint preset, the ETA from the first epoch, and device selection, mixed
precision and the ``gpu`` extra as a GPU host would take them.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from training import architectures, progress, trainer
from training.config import TrainConfig, preset_fields
from training.progress import RemainingTime
from training.recipes import RECIPES
from training.sources import Images, TrainingData
from training.sources import base as source_base
from training.sources import mnist as mnist_source
from training.stream import training_dataset
from training.trainer import optimizer

ROOT = Path(__file__).resolve().parent.parent


def numbered(n: int) -> Images:
    """n images whose first two pixels spell their own index."""
    x = np.zeros((n, 28, 28), np.uint8)
    x[:, 0, 0], x[:, 0, 1] = np.arange(n) // 256, np.arange(n) % 256
    return Images(x, (np.arange(n) % 10).astype(np.uint8))


def indices(batch_x: np.ndarray) -> np.ndarray:
    pixels = np.rint(batch_x[:, 0, :2, 0] * 255).astype(int)
    return pixels[:, 0] * 256 + pixels[:, 1]


# --- the input stream ----------------------------------------------------------------


def test_the_stream_takes_every_image_once_a_pass_in_a_new_order_each_pass():
    data = TrainingData(numbered(1000), numbered(10))
    config = TrainConfig(sources=("mnist",), batch_size=64)
    seen = np.concatenate([indices(x.numpy()) for x, _ in training_dataset(data, config).take(32)])
    first, second = seen[:1000], seen[1000:2000]
    assert sorted(first) == list(range(1000))  # every image once, none twice
    assert sorted(second) == list(range(1000))
    assert not np.array_equal(first, second) and not np.array_equal(first, np.arange(1000))
    # and the labels travel with their images, one-hot
    x, y = next(iter(training_dataset(data, config)))
    assert x.shape == (64, 28, 28, 1) and x.dtype == tf.float32 and y.shape == (64, 10)
    assert np.array_equal(y.numpy().argmax(1), indices(x.numpy()) % 10)


def test_the_same_seed_gives_the_same_stream_and_another_seed_another():
    data = TrainingData(numbered(500), numbered(10))

    def stream(seed):
        config = TrainConfig(sources=("mnist",), batch_size=50, seed=seed)
        return np.concatenate(
            [indices(x.numpy()) for x, _ in training_dataset(data, config).take(4)]
        )

    assert np.array_equal(stream(1), stream(1))
    assert not np.array_equal(stream(1), stream(2))


def test_pools_fill_their_share_of_every_batch_with_all_their_variants():
    pool = source_base.Pool(
        "pendigits",
        np.stack([numbered(300).x + 0, numbered(300).x + 0], axis=1),  # 2 variants each
        np.full(300, 3, np.uint8),
        np.ones(300),
        draws=1000,
    )
    pool.x[:, 1, 5, 5] = 255  # the second variant is marked
    data = TrainingData(Images(np.zeros((3000, 28, 28), np.uint8), np.ones(3000, np.uint8)),
                        numbered(10), pools=[pool])  # fmt: skip
    config = TrainConfig(sources=("mnist", "pendigits"), batch_size=100)
    batches = [(x.numpy(), y.numpy().argmax(1)) for x, y in training_dataset(data, config).take(40)]
    from_pool = np.concatenate([(y == 3) for _, y in batches])
    assert from_pool.mean() == pytest.approx(1000 / 4000, abs=0.03)  # its natural share
    # each batch holds its share, not a random count
    assert all(abs((y == 3).mean() - 0.25) <= 0.06 for _, y in batches)
    pooled = np.concatenate([x[y == 3] for x, y in batches])
    assert 0.4 < (pooled[:, 5, 5, 0] > 0.5).mean() < 0.6  # both variants drawn
    assert len(np.unique(indices(pooled))) > 200  # across the pool's drawings


# --- schedules, presets, the model ------------------------------------------------------


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


# --- the ETA ----------------------------------------------------------------------------


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


# --- the GPU branches, without a GPU ----------------------------------------------------


@pytest.fixture
def policy():
    yield
    keras.mixed_precision.set_global_policy("float32")


def test_a_gpu_is_chosen_with_memory_growth_and_mixed_precision(monkeypatch, policy):
    gpu = tf.config.PhysicalDevice("/physical_device:GPU:0", "GPU")
    grown = []
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: [gpu])
    monkeypatch.setattr(
        tf.config.experimental, "set_memory_growth", lambda d, on: grown.append((d, on))
    )
    monkeypatch.setattr(
        tf.config.experimental,
        "get_device_details",
        lambda d: {"device_name": "NVIDIA H100 80GB HBM3", "compute_capability": (9, 0)},
    )
    assert trainer.configure_device() == "GPU: NVIDIA H100 80GB HBM3"
    assert grown == [(gpu, True)]
    assert keras.mixed_precision.global_policy().name == "mixed_float16"


def test_without_a_gpu_the_cpu_trains_in_float32(monkeypatch, policy):
    keras.mixed_precision.set_global_policy("mixed_float16")  # left over from a GPU run
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: [])
    assert trainer.configure_device().startswith("CPU: ")
    assert keras.mixed_precision.global_policy().name == "float32"


@pytest.mark.slow
def test_under_mixed_precision_the_model_and_augmentation_train_and_answer_in_float32(policy):
    keras.mixed_precision.set_global_policy("mixed_float16")
    config = TrainConfig(epochs=1, batch_size=32)
    model, fitted = trainer.build_model(config, steps_per_epoch=2)
    # the augmentation (the fitted model's first layer: on the GPU, it runs there)
    assert type(fitted.layers[1]).__name__ == "DigitAugment"
    conv = next(layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D))
    assert conv.compute_dtype == "float16" and conv.variable_dtype == "float32"
    assert isinstance(fitted.optimizer, keras.optimizers.LossScaleOptimizer)
    x = np.random.default_rng(0).random((64, 28, 28, 1)).astype(np.float32)
    y = keras.utils.to_categorical(np.arange(64) % 10, 10)
    history = fitted.fit(x, y, batch_size=32, epochs=1, verbose=0).history
    assert np.isfinite(history["loss"][0])
    probabilities = model.predict(x[:4], verbose=0)
    assert probabilities.dtype == np.float32
    assert np.allclose(probabilities.sum(1), 1.0, atol=1e-3)


def test_the_gpu_extra_is_the_pinned_tensorflow_with_its_cuda_packages():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pinned = next(d for d in project["dependencies"] if re.match(r"tensorflow(-cpu)?==", d))
    version = pinned.split("==")[1]
    assert project["optional-dependencies"]["gpu"] == [f"tensorflow[and-cuda]=={version}"]
    # the installed TensorFlow is that version and declares the extra, with the CUDA wheels
    assert metadata.version("tensorflow") == version
    cuda = [r for r in metadata.requires("tensorflow") if 'extra == "and-cuda"' in r]
    assert any(r.startswith("nvidia-cudnn-cu") for r in cuda)
    assert any(r.startswith("nvidia-cuda-runtime-cu") for r in cuda)


@pytest.mark.slow
def test_the_gpu_extra_resolves_from_the_package_index(tmp_path):
    """pip resolves ``.[gpu]`` for this Python and platform (metadata only, nothing installed)."""
    report = tmp_path / "report.json"
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--quiet", "--ignore-installed",
         "--report", str(report), f"{ROOT}[gpu]"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    if done.returncode and re.search(r"(?i)connection|resolve host|network|timed out", done.stderr):
        pytest.skip(f"the package index cannot be reached: {done.stderr[-300:]}")
    assert done.returncode == 0, done.stderr[-2000:]
    names = {item["metadata"]["name"].lower() for item in json.loads(report.read_text())["install"]}
    assert "tensorflow" in names
    assert any(name.startswith("nvidia-cudnn-cu") for name in names)
