"""``manage.py train``: train a named architecture and write a model directory.

Every option's default is ``training.config.DEFAULTS``: the bootstrap recipe.
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from collector.formats import DatasetError
from training import priority
from training.config import ARCHITECTURE_NAMES, DEFAULTS, SOURCES, ConfigError, TrainConfig


class Command(BaseCommand):
    help = "Train a model with early stopping, an LR schedule and a fixed seed; write its report."

    def add_arguments(self, parser):
        parser.add_argument(
            "--architecture", default=DEFAULTS.architecture, choices=sorted(ARCHITECTURE_NAMES)
        )
        parser.add_argument("--epochs", type=int, default=DEFAULTS.epochs)
        parser.add_argument("--batch-size", type=int, default=DEFAULTS.batch_size)
        parser.add_argument("--learning-rate", type=float, default=DEFAULTS.learning_rate)
        parser.add_argument(
            "--sources",
            default=",".join(DEFAULTS.sources),
            help=f"comma-separated, from {', '.join(SOURCES)} (kaggle needs --kaggle-csv, "
            "folder --image-folder); "
            "drawings are the approved contributions",
        )
        parser.add_argument("--kaggle-csv", default="", help="a Kaggle digit-recognizer train.csv")
        parser.add_argument(
            "--image-folder", default="", help="images in one sub-folder per digit (DIR/7/*.png)"
        )
        parser.add_argument("--seed", type=int, default=DEFAULTS.seed)
        parser.add_argument("--limit", type=int, default=None, help="cap each source (smoke runs)")
        parser.add_argument("--no-augment", action="store_true")
        parser.add_argument(
            "--variants",
            type=int,
            default=DEFAULTS.variants,
            help="stroke-space variants per pen digit and drawing (1: none)",
        )
        parser.add_argument("--out", type=Path, default=None, help="output directory")
        parser.add_argument(
            "--register",
            action="store_true",
            help="register the result as a new active model version",
        )

    def handle(self, *args, **options):
        priority.lower()  # on a serving host, predictions come first
        try:
            config = TrainConfig(
                architecture=options["architecture"],
                epochs=options["epochs"],
                batch_size=options["batch_size"],
                learning_rate=options["learning_rate"],
                sources=tuple(s.strip() for s in options["sources"].split(",") if s.strip()),
                seed=options["seed"],
                limit=options["limit"],
                augment=not options["no_augment"],
                variants=options["variants"],
                kaggle_csv=options["kaggle_csv"],
                image_folder=options["image_folder"],
            )
        except ConfigError as exc:
            raise CommandError(str(exc)) from exc

        from training.trainer import train  # imports TensorFlow: only when training

        out = options["out"] or Path(settings.DIGITS_DATA_DIR) / "runs" / timezone.now().strftime(
            f"%Y%m%d-%H%M%S-{config.architecture}"
        )
        try:
            result = train(config, out, verbose=1 if options["verbosity"] >= 1 else 0)
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
        self.stdout.write(
            f"trained in {result.metrics['train_seconds']} s on {result.metrics['device']}"
        )
        self.stdout.write(f"wrote {out}")
        if options["register"]:
            from classifier.registry import register_directory

            version = register_directory(out, activate=True, note="manage.py train --register")
            self.stdout.write(f"registered and activated model version {version.version}")
