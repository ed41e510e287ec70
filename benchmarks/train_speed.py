"""How fast the default model learns on this machine.

    .venv/bin/python benchmarks/train_speed.py [--epochs 20] [--architecture digitnet]

Trains on MNIST (+ pen digits with --sources mnist,pendigits), scores the MNIST
test set after every epoch, and prints the wall-clock time at which test
accuracy first reached 99.0 % and the final figures. Target on the 2-core
machine: ≥ 99.0 % within 2 minutes, the final model within 20 minutes.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import _django  # noqa: F401

from training.config import TrainConfig
from training.sources import TrainingData, load_training_data
from training.trainer import Callback, train


class WatchTests(Callback):
    """Scores every test set after each epoch, into the history (for this learning-speed
    figure only: never used to pick a model)."""

    def __init__(self, data: TrainingData):
        self.data = data

    def on_epoch(self, epoch: int, logs: dict) -> None:
        for name, images in self.data.tests.items():
            predicted = self.model.predict(
                images.as_inputs()[..., None], batch_size=1024, verbose=0
            )
            logs[f"test_{name}_accuracy"] = float((predicted.argmax(1) == images.y).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--architecture", default="digitnet")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--sources", default="mnist")
    args = parser.parse_args()
    config = TrainConfig(
        architecture=args.architecture,
        epochs=args.epochs,
        sources=tuple(args.sources.split(",")),
    )
    data = load_training_data(config)
    with tempfile.TemporaryDirectory() as out:
        result = train(config, Path(out), verbose=0, data=data, callback=WatchTests(data))
    metrics = result.metrics
    history = metrics["history"]
    print(f"architecture={config.architecture} params={metrics['parameters']}")
    print(f"device={metrics['device']}")
    print("epoch  elapsed_s  val_acc  mnist_test_acc")
    reached = None
    for epoch, (elapsed, val, test) in enumerate(
        zip(
            metrics["epoch_seconds"],
            history["val_accuracy"],
            history["test_mnist-test_accuracy"],
            strict=False,
        ),
        1,
    ):
        print(f"{epoch:5d}  {elapsed:9.1f}  {val:7.4f}  {test:14.4f}")
        if reached is None and test >= 0.99:
            reached = (epoch, elapsed)
    if reached:
        print(f"time_to_99.0%: {reached[1]:.1f} s (epoch {reached[0]})")
    else:
        print("time_to_99.0%: not reached")
    final = metrics["tests"]["mnist-test"]["accuracy"]
    print(
        f"final mnist-test accuracy: {final * 100:.2f}% after {metrics['train_seconds']:.0f} s "
        f"({metrics['epochs_run']} epochs, best weights restored)"
    )


if __name__ == "__main__":
    main()
