"""Does normalising stroke thickness help on real pen strokes? Measured, not assumed.

    .venv/bin/python benchmarks/stroke_normalisation.py [--epochs 4] [--every 3]

Trains the default model on MNIST only (so every one of the 30 pen writers is
unseen), renders their digits on the canvas at several sizes with the page's
16 px stroke (a small digit means relatively thick strokes, a big one hairlines),
and scores them with the preprocessing's stroke normalisation off and on.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import _django  # noqa: F401
import numpy as np

from classifier import canvas, preprocessing
from training.sources import pendigits as pen_source
from training.trainer import TrainConfig, train

SIZES = (80, 120, 180, 240)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--every", type=int, default=3, help="use every n-th pen digit")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as out:
        result = train(TrainConfig(epochs=args.epochs, sources=("mnist",)), Path(out), verbose=0)
        from classifier.predictor import Predictor

        predictor = Predictor(result.tflite_path)
        mnist_accuracy = result.metrics["tests"]["mnist-test"]["accuracy"]

    digits = pen_source.load_pendigit_strokes()[:: args.every]
    labels = np.array([d.label for d in digits])
    print(f"MNIST-only digitnet ({args.epochs} epochs): MNIST test {mnist_accuracy * 100:.2f}%")
    print(f"{len(digits)} pen digits by 30 writers, stroke {preprocessing.CANVAS_STROKE_WIDTH} px")
    print("digit size  stroke@20px  plain    normalised")
    totals = {False: [], True: []}
    for size in SIZES:
        inks = [preprocessing.decode_ink(canvas.render_strokes(d.strokes, size)) for d in digits]
        row = {}
        for normalise in (False, True):
            x = np.stack(
                [preprocessing.ink_to_model_input(i, normalise_stroke=normalise) for i in inks]
            )
            correct = predictor.predict(x).argmax(1) == labels
            row[normalise] = correct.mean()
            totals[normalise].append(correct)
        stroke = preprocessing.CANVAS_STROKE_WIDTH * preprocessing.DIGIT_BOX / size
        print(f"{size:7d} px  {stroke:8.2f} px  {row[False] * 100:6.2f}%  {row[True] * 100:6.2f}%")
    plain, normalised = (np.concatenate(totals[k]).mean() for k in (False, True))
    print(f"all sizes: plain {plain * 100:.2f}%  normalised {normalised * 100:.2f}%")


if __name__ == "__main__":
    main()
