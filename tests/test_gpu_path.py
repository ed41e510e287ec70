"""The GPU branches, checked without a GPU: device selection, memory growth, mixed
precision, and the ``gpu`` extra as a GPU host would install it."""

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

from training import trainer
from training.config import TrainConfig

ROOT = Path(__file__).resolve().parent.parent


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
