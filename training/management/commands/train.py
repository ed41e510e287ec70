"""``manage.py train``: train a named architecture and write a model directory.

Every option's default is ``training.config.DEFAULTS`` (the bootstrap recipe),
or the ``--preset``'s value when one is named: ``train --preset kaggle-cnn``
trains the Kaggle project's model with that project's own recipe.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from collector.formats import DatasetError
from training import priority
from training.config import (
    ARCHITECTURE_NAMES,
    DEFAULTS,
    PRESETS,
    SOURCES,
    ConfigError,
    TrainConfig,
    preset_fields,
)
from training.recipes import RECIPE_NAMES

# The options that set a ``TrainConfig`` field of the same name (``--sources`` is parsed).
_SETTINGS = (
    "architecture", "recipe", "epochs", "batch_size", "learning_rate", "seed", "limit",
    "augment", "variants", "kaggle_csv", "image_folder",
)  # fmt: skip


class Command(BaseCommand):
    help = "Train a model with early stopping, an LR schedule and a fixed seed; write its report."

    def add_arguments(self, parser):
        parser.add_argument(
            "--preset",
            default="",
            choices=sorted(PRESETS),
            help="start from a preset's settings (a prior-work name trains with that "
            "project's recipe); the options below override them",
        )
        parser.add_argument("--architecture", choices=sorted(ARCHITECTURE_NAMES))
        parser.add_argument(
            "--recipe",
            choices=sorted(RECIPE_NAMES),
            help="optimizer, schedule, callbacks and augmentation ranges (training/recipes.py)",
        )
        parser.add_argument("--epochs", type=int)
        parser.add_argument("--batch-size", type=int)
        parser.add_argument("--learning-rate", type=float)
        parser.add_argument(
            "--sources",
            help=f"comma-separated, from {', '.join(SOURCES)} (kaggle needs --kaggle-csv, "
            "folder --image-folder); drawings are the approved contributions "
            f"(default: {','.join(DEFAULTS.sources)})",
        )
        parser.add_argument("--kaggle-csv", help="a Kaggle digit-recognizer train.csv")
        parser.add_argument(
            "--image-folder", help="images in one sub-folder per digit (DIR/7/*.png)"
        )
        parser.add_argument("--seed", type=int)
        parser.add_argument("--limit", type=int, help="cap each source (smoke runs)")
        parser.add_argument("--no-augment", action="store_const", const=False, dest="augment")
        parser.add_argument(
            "--variants",
            type=int,
            help=f"stroke-space variants per pen digit and drawing (1: none; "
            f"default {DEFAULTS.variants})",
        )
        parser.add_argument(
            "--from",
            dest="start_from",
            type=Path,
            default=None,
            help="start from a model directory's weights (its model.keras, and pen.keras "
            "for the pen view): a fine-tune of that model, as --preset finetune does of "
            "the serving one",
        )
        parser.add_argument("--out", type=Path, default=None, help="output directory")
        parser.add_argument(
            "--register",
            action="store_true",
            help="register the result as a new active model version",
        )

    def handle(self, *args, **options):
        priority.lower()  # on a serving host, predictions come first
        given = {name: options[name] for name in _SETTINGS if options[name] is not None}
        if options["sources"] is not None:
            given["sources"] = tuple(s.strip() for s in options["sources"].split(",") if s.strip())
        try:
            config = dataclasses.replace(
                TrainConfig.from_run_fields(**preset_fields(options["preset"])), **given
            )
        except ConfigError as exc:
            raise CommandError(str(exc)) from exc

        from training.progress import Callback
        from training.trainer import train  # imports TensorFlow: only when training

        command = self

        class Said(Callback):
            def on_log(self, message: str) -> None:  # the pen view's epochs and figures
                command.stdout.write(message)

        out = options["out"] or Path(settings.DIGITS_DATA_DIR) / "runs" / timezone.now().strftime(
            f"%Y%m%d-%H%M%S-{config.architecture}"
        )
        start = options["start_from"]
        initial = initial_pen = None
        if start is not None:
            initial, initial_pen = start / "model.keras", start / "pen.keras"
            if not initial.is_file():
                raise CommandError(f"{start} holds no model.keras to start from.")
            initial_pen = initial_pen if initial_pen.is_file() else None
        try:
            result = train(
                config, out, verbose=1 if options["verbosity"] >= 1 else 0, callback=Said(),
                initial=initial, initial_pen=initial_pen,
            )  # fmt: skip
        except DatasetError as exc:
            raise CommandError(str(exc)) from exc
        for name, report in result.metrics["tests"].items():
            self.stdout.write(f"{name}: accuracy {report['accuracy'] * 100:.2f}% (n={report['n']})")
        fitted = result.metrics["calibration"]
        self.stdout.write(
            f"calibration: temperature {fitted['temperature']}, 'not sure' under "
            f"{fitted['threshold']}; ECE on pendigits "
            f"{fitted['ece'].get('pendigits', {}).get('before', float('nan')) * 100:.2f}% → "
            f"{fitted['ece'].get('pendigits', {}).get('after', float('nan')) * 100:.2f}%"
        )
        pen = result.metrics.get("pen") or {}
        for name, views in (pen.get("tests") or {}).items():
            self.stdout.write(
                f"{name} (n={views['n']}): picture {views['image']['accuracy'] * 100:.2f}%, "
                f"pen {views['pen']['accuracy'] * 100:.2f}%, "
                f"both {views['combined']['accuracy'] * 100:.2f}%"
            )
        self.stdout.write(
            f"trained in {result.metrics['train_seconds']} s on {result.metrics['device']}"
            + (f" (the pen view: {pen['train_seconds']} s more)" if pen else "")
        )
        self.stdout.write(f"wrote {out}")
        if options["register"]:
            from classifier.registry import register_directory

            version = register_directory(out, activate=True, note="manage.py train --register")
            self.stdout.write(f"registered and activated model version {version.version}")
