"""``manage.py add_pen_view DIR``: train the pen view for a model directory whose
image model is kept as it is (``model.tflite`` and ``metrics.json`` from
``manage.py train``), fit the combination of the two, and write ``pen.keras``,
``pen.tflite`` and ``metrics["pen"]`` into the directory.

A version trained before the pen view existed gains one without a new image
model: its answers from the picture alone stay exactly what they were. This is
how the committed bootstrap model got its pen view (a full retrain of the image
model with the same recipe read the held-out pen writers worse, 98.87 % against
99.47 %: CPU training is not bit-for-bit repeatable, and image-only clients must
not get worse).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from training.config import DEFAULTS, TrainConfig


class Command(BaseCommand):
    help = "Train the pen view beside a model directory's image model, and combine the two."

    def add_arguments(self, parser):
        parser.add_argument("directory", type=Path)
        parser.add_argument("--epochs", type=int, default=None, help="the pen view's epochs")

    def handle(self, *args, directory: Path, epochs: int | None, **options):
        metrics_path = directory / "metrics.json"
        image = directory / "model.tflite"
        if not metrics_path.exists() or not image.exists():
            raise CommandError(f"{directory} lacks model.tflite or metrics.json.")
        metrics = json.loads(metrics_path.read_text())
        recorded = metrics.get("config") or {}
        known = {f.name for f in dataclasses.fields(TrainConfig)}
        config = dataclasses.replace(
            DEFAULTS, **{k: v for k, v in recorded.items() if k in known and k != "limit"}
        )
        if epochs is not None:
            config = dataclasses.replace(config, epochs=epochs)
        temperature = (metrics.get("calibration") or {}).get("temperature", 1.0)

        from training import pen_view
        from training.trainer import export_tflite  # imports TensorFlow: only here

        pen, _ = pen_view.train_view(
            config, directory, image, temperature, log=self.stdout.write, export=export_tflite
        )
        if not pen:
            raise CommandError("There are no drawings with strokes to train the pen view on.")
        metrics["pen"] = pen
        metrics_path.write_text(json.dumps(metrics, indent=2))
        self.stdout.write(
            f"pen view: {pen['parameters']:,} weights, {pen['epochs']} epochs in "
            f"{pen['train_seconds']} s; combination {pen['combination']['image_weight']} × "
            f"picture + {pen['combination']['pen_weight']} × pen; wrote {directory}"
        )
