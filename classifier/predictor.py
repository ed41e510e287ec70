"""One served model: a TFLite flatbuffer answered by LiteRT's small interpreter.

No Django and no TensorFlow here, so the web process, the registry, training's
re-verification and the benchmarks all load a model the same way. The web
process keeps the active one in memory (``classifier.runtime``).
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from classifier import pen
from classifier.calibration import apply_temperature

_first_built = False


@contextlib.contextmanager
def _quiet_first_interpreter() -> Iterator[None]:
    """LiteRT prints "INFO: Created TensorFlow Lite XNNPACK delegate for CPU." straight
    to file descriptor 2, past any log level, when a process builds its first
    interpreter (once only). Processes started quietly (``manage.py`` sets
    ``TF_CPP_MIN_LOG_LEVEL=3`` unless asked for ``--verbosity 2``) build that one
    with descriptor 2 sent to /dev/null for the moment it takes."""
    global _first_built
    if _first_built or os.environ.get("TF_CPP_MIN_LOG_LEVEL") != "3":
        _first_built = True
        yield
        return
    _first_built = True
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


class Predictor:
    """One TFLite model. The interpreter is not thread-safe, so calls are serialised
    with a lock. In gunicorn's gevent workers a prediction never yields while it holds
    it, so it never waits there."""

    def __init__(self, model: Path | bytes, temperature: float = 1.0):
        """``temperature``: the version's calibration (``classifier.calibration``)."""
        from ai_edge_litert.interpreter import Interpreter

        with _quiet_first_interpreter():
            if isinstance(model, bytes | bytearray):
                self._interpreter = Interpreter(model_content=bytes(model), num_threads=1)
            else:
                self._interpreter = Interpreter(model_path=str(model), num_threads=1)
            self._input = self._interpreter.get_input_details()[0]
            self._output = self._interpreter.get_output_details()[0]
            self._batch = 1
            self._interpreter.allocate_tensors()
        self._lock = threading.Lock()
        self.temperature = float(temperature)
        shape = tuple(int(n) for n in self._input["shape"][1:])
        if shape not in {(28, 28, 1), (28, 28), (pen.POINTS, pen.FEATURES)}:
            raise ValueError(
                f"Unexpected model input shape {shape}; expected 28×28 (the picture) "
                f"or {pen.POINTS}×{pen.FEATURES} (the pen)."
            )
        self._input_shape = shape
        self.reads_pen = shape == (pen.POINTS, pen.FEATURES)

    def predict(self, images: np.ndarray) -> np.ndarray:
        """(n, 28, 28) float32 in [0, 1] (or, for the pen view, ``classifier.pen``'s
        (n, POINTS, FEATURES) features) → (n, 10) probabilities."""
        images = np.asarray(images, dtype=np.float32).reshape((-1, *self._input_shape))
        with self._lock:
            if len(images) != self._batch:
                self._interpreter.resize_tensor_input(
                    self._input["index"], [len(images), *self._input_shape]
                )
                self._interpreter.allocate_tensors()
                self._batch = len(images)
            self._interpreter.set_tensor(self._input["index"], images)
            self._interpreter.invoke()
            raw = np.array(self._interpreter.get_tensor(self._output["index"]), dtype=np.float32)
        return apply_temperature(raw, self.temperature)
