"""Commands print what they are for, not TensorFlow's native start-up lines (unless
asked with --verbosity 2)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOISE = re.compile(r"absl::InitializeLog|^[IWE]\d{4} |cuInit|oneDNN|cuda", re.M | re.I)
USES_TENSORFLOW = "import tensorflow as tf; tf.config.list_physical_devices('GPU'); print('ok')"


def manage(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    return subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


@pytest.mark.parametrize(
    "args",
    [("train", "--help"), ("evaluate", "--help"), ("--help",), ("shell", "-c", USES_TENSORFLOW)],
)
def test_commands_are_quiet(args):
    result = manage(*args)
    assert result.returncode == 0, result.stderr[-2000:]
    assert not NOISE.search(result.stderr), result.stderr[:2000]


def test_verbosity_2_shows_tensorflows_lines():
    result = manage("shell", "-v", "2", "-c", USES_TENSORFLOW)
    assert result.returncode == 0 and "ok" in result.stdout
    assert NOISE.search(result.stderr), "nothing to show: this test proves nothing here"


USES_LITERT = (
    "import numpy as np; from classifier.predictor import Predictor; "
    "from classifier.registry import BOOTSTRAP_DIR; "
    "Predictor(BOOTSTRAP_DIR / 'model.tflite').predict(np.zeros((1, 28, 28), np.float32)); "
    "Predictor(BOOTSTRAP_DIR / 'pen.tflite'); print('ok')"
)


@pytest.mark.parametrize("verbosity", ["1", "2"])
def test_litert_says_nothing_of_its_delegate_unless_asked(verbosity):
    result = manage("shell", "-v", verbosity, "-c", USES_LITERT)
    assert result.returncode == 0 and "ok" in result.stdout, result.stderr[-2000:]
    assert ("XNNPACK" in result.stderr) == (
        verbosity == "2"
    )  # shown when asked: not hidden by luck


def test_an_unexpected_failure_is_one_line_and_a_non_zero_exit():
    result = manage("shell", "-c", "raise RuntimeError('the disk said no')")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == "Error: RuntimeError: the disk said no"
    assert "Traceback" not in result.stderr
    shown = manage("shell", "--traceback", "-c", "raise RuntimeError('the disk said no')")
    assert shown.returncode != 0 and "Traceback" in shown.stderr  # asked for: all of it
