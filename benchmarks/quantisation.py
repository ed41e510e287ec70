"""Should the served artifact be quantised? Only if accuracy is unchanged.

    .venv/bin/python benchmarks/quantisation.py

Exports the bootstrap Keras model three ways (float32, float16 weights,
dynamic-range int8 weights), scores each with the LiteRT runtime on every
test set, and times one prediction. The rule (serving issue): quantise only if
every test set's accuracy is within 0.05 points of float32.
"""

from __future__ import annotations

import contextlib
import io
import time

import _django  # noqa: F401
import numpy as np

from classifier.predictor import Predictor
from classifier.registry import BOOTSTRAP_DIR
from training.evaluation import classification_report
from training.sources import mnist as mnist_source
from training.sources import pendigits as pen_source


def convert(model, mode: str) -> bytes:
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if mode == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif mode == "dynamic-range":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    with contextlib.redirect_stdout(io.StringIO()):
        return converter.convert()


def main() -> None:
    import keras

    model = keras.saving.load_model(BOOTSTRAP_DIR / "model.keras")
    tests = {
        "mnist-test": mnist_source.load_mnist().test,
        "pendigits": pen_source.pendigits_test_split(),
    }
    results = {}
    for mode in ("float32", "float16", "dynamic-range"):
        flatbuffer = convert(model, mode)
        predictor = Predictor(flatbuffer)
        accuracy = {
            name: classification_report(
                split.y, predictor.predict(split.x.astype(np.float32) / 255)
            )["accuracy"]
            for name, split in tests.items()
        }
        one = tests["mnist-test"].x[:1].astype(np.float32) / 255
        for _ in range(50):
            predictor.predict(one)
        started = time.perf_counter()
        for _ in range(1000):
            predictor.predict(one)
        latency = (time.perf_counter() - started) / 1000 * 1000
        results[mode] = (len(flatbuffer), accuracy, latency)
    base = results["float32"][1]
    print(
        "artifact        size KB  mnist-test  pendigits  one prediction   within 0.05 pts of float32"
    )
    for mode, (size, accuracy, latency) in results.items():
        ok = all(abs(accuracy[k] - base[k]) * 100 <= 0.05 for k in base)
        print(f"{mode:<14} {size / 1024:8.0f}  {accuracy['mnist-test'] * 100:9.2f}%  {accuracy['pendigits'] * 100:8.2f}%  "
              f"{latency:10.3f} ms   {'yes' if ok else 'no'}")  # fmt: skip


if __name__ == "__main__":
    main()
