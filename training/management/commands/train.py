"""``manage.py train``: train a named architecture and write a model directory."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from training.architectures import ARCHITECTURES, DEFAULT_ARCHITECTURE


class Command(BaseCommand):
    help = "Train a model with early stopping, an LR schedule and a fixed seed; write its report."

    def add_arguments(self, parser):
        parser.add_argument(
            "--architecture", default=DEFAULT_ARCHITECTURE, choices=sorted(ARCHITECTURES)
        )
        parser.add_argument("--epochs", type=int, default=30)
        parser.add_argument("--batch-size", type=int, default=128)
        parser.add_argument("--learning-rate", type=float, default=3e-3)
        parser.add_argument(
            "--sources",
            default="mnist,pendigits",
            help="comma-separated: mnist, pendigits, drawings (approved), kaggle (--kaggle-csv)",
        )
        parser.add_argument("--kaggle-csv", default="", help="a Kaggle digit-recognizer train.csv")
        parser.add_argument("--seed", type=int, default=1234)
        parser.add_argument("--limit", type=int, default=None, help="cap each source (smoke runs)")
        parser.add_argument("--no-augment", action="store_true")
        parser.add_argument("--out", type=Path, default=None, help="output directory")
        parser.add_argument(
            "--register",
            action="store_true",
            help="register the result as a new active model version",
        )

    def handle(self, *args, **options):
        from training.datasets import DatasetError
        from training.trainer import TrainConfig, train

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
                kaggle_csv=options["kaggle_csv"],
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        out = options["out"] or Path(settings.DIGITS_DATA_DIR) / "runs" / timezone.now().strftime(
            f"%Y%m%d-%H%M%S-{config.architecture}"
        )
        try:
            result = train(config, out, verbose=1 if options["verbosity"] >= 1 else 0)
        except DatasetError as exc:
            raise CommandError(str(exc)) from exc
        for name, report in result.metrics["tests"].items():
            self.stdout.write(f"{name}: accuracy {report['accuracy'] * 100:.2f}% (n={report['n']})")
        self.stdout.write(
            f"trained in {result.metrics['train_seconds']} s on {result.metrics['device']}"
        )
        self.stdout.write(f"wrote {out}")
        if options["register"]:
            from classifier.registry import register_directory

            version = register_directory(out, activate=True, note="manage.py train --register")
            self.stdout.write(f"registered and activated model version {version.version}")
