"""Serving runtime: the active model in memory, answered with the LiteRT interpreter.

The web process never imports TensorFlow: a TFLite flatbuffer and LiteRT's
small interpreter answer one drawing in about a millisecond, where Keras'
``model.predict`` takes tens (see the serving issue and ``benchmarks/``).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)


class Predictor:
    """One TFLite model. The interpreter is not thread-safe, so calls are serialised
    with a lock; gunicorn's sync workers are one thread each, so it never waits there."""

    def __init__(self, model: Path | bytes):
        from ai_edge_litert.interpreter import Interpreter

        if isinstance(model, bytes | bytearray):
            self._interpreter = Interpreter(model_content=bytes(model), num_threads=1)
        else:
            self._interpreter = Interpreter(model_path=str(model), num_threads=1)
        self._input = self._interpreter.get_input_details()[0]
        self._output = self._interpreter.get_output_details()[0]
        self._batch = 1
        self._interpreter.allocate_tensors()
        self._lock = threading.Lock()
        shape = tuple(self._input["shape"][1:])
        if shape not in {(28, 28, 1), (28, 28)}:
            raise ValueError(f"Unexpected model input shape {shape}; expected 28×28.")
        self._input_shape = shape

    def predict(self, images: np.ndarray) -> np.ndarray:
        """(n, 28, 28) float32 in [0, 1] → (n, 10) probabilities."""
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
            return np.array(self._interpreter.get_tensor(self._output["index"]), dtype=np.float32)


@dataclass(frozen=True)
class LoadedModel:
    version_id: int
    version: int
    predictor: Predictor


class NoActiveModel(RuntimeError):
    """There is no model to answer with (run ``manage.py ensure_model``)."""


_lock = threading.Lock()
_current: LoadedModel | None = None
_checked_at = 0.0


def active_model() -> LoadedModel:
    """The active version, loaded once per process and swapped when another is promoted.

    At most every ``DIGITS_MODEL_CHECK_SECONDS`` a cheap query compares the active
    version id with the one in memory. If the new artifact cannot be loaded,
    the previous model keeps answering and the failure is logged.
    """
    global _current, _checked_at
    from django.conf import settings

    from classifier.models import ModelVersion

    now = time.monotonic()
    if _current is not None and now - _checked_at < settings.DIGITS_MODEL_CHECK_SECONDS:
        return _current
    with _lock:
        if _current is not None and now - _checked_at < settings.DIGITS_MODEL_CHECK_SECONDS:
            return _current
        active_id = (
            ModelVersion.objects.filter(status=ModelVersion.Status.ACTIVE)
            .values_list("id", flat=True)
            .first()
        )
        _checked_at = now
        if active_id is None:
            if _current is None:
                raise NoActiveModel("No model is active yet.")
            return _current
        if _current is None or _current.version_id != active_id:
            version = ModelVersion.objects.get(id=active_id)
            try:
                with version.tflite.open("rb") as handle:
                    predictor = Predictor(handle.read())
            except Exception:
                if _current is None:
                    raise
                logger.exception(
                    "Could not load model version %s; still serving version %s.",
                    version.version,
                    _current.version,
                )
                return _current
            _current = LoadedModel(version.id, version.version, predictor)
            logger.info("Serving model version %s.", version.version)
        return _current


def reset() -> None:
    """Forget the loaded model (tests, and after a restore)."""
    global _current, _checked_at
    with _lock:
        _current = None
        _checked_at = 0.0
