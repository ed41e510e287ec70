"""The prior work's models beside ours: each with its own recipe, on the same data.

    .venv/bin/python benchmarks/prior_work.py [--max-epochs 3] [--models digitnet,mlp,...]
    .venv/bin/python benchmarks/prior_work.py --models kaggle-cnn --flip   # what the flip costs

Every model trains with its project's recipe (``training/recipes.py``: optimizer,
schedule, callbacks, augmentation ranges, seed) on one set of images loaded once
(MNIST with 5,000 held out + the pen digits' training writers and their
stroke-space variants), so the only differences are the model and its recipe.
Each is scored on MNIST test and the six held-out pen writers (drawn, and as
scans), exported to LiteRT as it would be served, and timed answering one image.

Full recipes run 20 to 50 epochs: hours on this CPU for the larger models, so
every run is capped at ``--max-epochs`` (the table says so). A capped schedule is
the recipe's own over fewer epochs: cosine decay ends at the cap, and StepLR or
ReduceLROnPlateau have had no chance to lower the rate yet. Training runs at
normal priority with every CPU, as on a training-only host.

Prints one Markdown table (the README's) and, for reference, the committed
bootstrap model's row (the full recipe, from its ``metrics.json``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import statistics
import tempfile
import time
from pathlib import Path

import _django  # noqa: F401
import numpy as np

from classifier.predictor import Predictor
from classifier.registry import BOOTSTRAP_DIR
from training.config import PRESETS, TrainConfig
from training.recipes import RECIPES
from training.sources import load_training_data
from training.trainer import train

MODELS = ("digitnet", "canvas-cnn", "mlp", "kaggle-cnn", "vgg-bn", "deep-bn")
SOURCES = ("mnist", "pendigits")
TESTS = ("mnist-test", "pendigits", "pendigits-scans")


def config_for(name: str, max_epochs: int) -> TrainConfig:
    """The model's preset (ours: ``default``) on the shared sources, epochs capped."""
    preset = PRESETS["default" if name == "digitnet" else name]
    config = TrainConfig.from_run_fields(**preset)
    return dataclasses.replace(config, sources=SOURCES, epochs=min(config.epochs, max_epochs))


def serving_latency_ms(tflite: Path, image: np.ndarray, calls: int = 500) -> float:
    """Median milliseconds for one image through LiteRT, as the web serves it."""
    predictor = Predictor(tflite)
    for _ in range(50):
        predictor.predict(image)
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        predictor.predict(image)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def row(name: str, metrics: dict, recipe_epochs: int, latency: float) -> str:
    tests = metrics["tests"]
    accuracy = " | ".join(f"{tests[t]['accuracy'] * 100:.2f} %" for t in TESTS)
    epochs = f"{metrics['epochs_run']} of {recipe_epochs}"
    return (
        f"| `{name}` | {RECIPES[metrics['config']['recipe']].project} "
        f"| {metrics['parameters']:,} | {epochs} | {metrics['train_seconds']:.0f} s "
        f"| {metrics['tflite_bytes'] / 1e6:.2f} MB | {latency:.2f} ms | {accuracy} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-epochs", type=int, default=3)
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--limit", type=int, default=None, help="cap each source (a smoke run)")
    parser.add_argument(
        "--flip",
        action="store_true",
        help="turn on the horizontal flip in every recipe with augmentation (the Kaggle "
        "project's; off in the recipes), to measure what it costs",
    )
    args = parser.parse_args()
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    logging.getLogger("tensorflow").setLevel(logging.WARNING)  # "Assets written to …"
    if args.flip:  # in this process only: the trainer reads the recipe by name
        for key, recipe in RECIPES.items():
            if recipe.augmentation is not None:
                flipped = dataclasses.replace(recipe.augmentation, horizontal_flip=True)
                RECIPES[key] = dataclasses.replace(recipe, augmentation=flipped)

    shared = dataclasses.replace(config_for("digitnet", args.max_epochs), limit=args.limit)
    data = load_training_data(shared)
    image = data.tests["mnist-test"].as_inputs()[:1]
    print(
        f"data: {len(data.train):,} fixed images + {sum(p.draws for p in data.pools):,} "
        f"pen-variant draws an epoch; validation {len(data.val):,}; "
        f"epochs capped at {args.max_epochs}"
    )
    header = (
        "| model | project (recipe) | parameters | epochs run (of recipe) | training time "
        "| .tflite | serving p50 (1 image) | MNIST test | held-out pen writers "
        "| their scans |\n| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    )
    rows = []
    for name in names:
        config = dataclasses.replace(config_for(name, args.max_epochs), limit=args.limit)
        with tempfile.TemporaryDirectory() as out:
            result = train(config, Path(out), verbose=0, data=data)
            latency = serving_latency_ms(result.tflite_path, image)
        line = row(name, result.metrics, RECIPES[config.recipe].epochs, latency)
        if args.flip:
            line = line.replace(f"| `{name}` |", f"| `{name}`, flip on |", 1)
        rows.append(line)
        print(line, flush=True)
    bootstrap = json.loads((BOOTSTRAP_DIR / "metrics.json").read_text())
    bootstrap["config"]["recipe"] = "digitnet"
    latency = serving_latency_ms(BOOTSTRAP_DIR / "model.tflite", image)
    reference = row("digitnet", bootstrap, RECIPES["digitnet"].epochs, latency).replace(
        "| `digitnet` |", "| `digitnet`, bootstrap (full recipe, from its metrics.json) |", 1
    )
    print()
    print(header)
    print("\n".join([*rows, reference]))


if __name__ == "__main__":
    main()
