"""``manage.py predict_csv test.csv --out submission.csv [--model N]``."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from classifier import submissions
from classifier.models import ArtifactError
from classifier.runtime import NoActiveModel


class Command(BaseCommand):
    help = (
        "Answer a Kaggle digit-recognizer test.csv (pixel0..pixel783) with the active "
        "model, or --model N, and write the submission (ImageId,Label)."
    )

    def add_arguments(self, parser):
        parser.add_argument("test_csv", type=Path)
        parser.add_argument("--out", type=Path, required=True, help="the submission CSV to write")
        parser.add_argument("--model", type=int, default=None, help="a model version number")

    def handle(self, *args, test_csv: Path, out: Path, model: int | None, **options):
        if not test_csv.is_file():
            raise CommandError(f"{test_csv} does not exist.")
        if not out.parent.is_dir():
            raise CommandError(f"The folder of {out} does not exist.")
        try:
            with open(test_csv, encoding="ascii", newline="") as handle:
                images = submissions.read_test(handle, str(test_csv))
        except UnicodeDecodeError:
            raise CommandError(f"{test_csv} is not a CSV of numbers.") from None
        except submissions.NotATestCsv as exc:
            raise CommandError(str(exc)) from None
        try:
            predictor, which = submissions.predictor_for(model)
            quiet = options["verbosity"] == 0
            with tqdm(total=len(images), unit="image", disable=quiet) as bar:
                labels = submissions.predict(images, predictor, bar.update)
        except (LookupError, ArtifactError, NoActiveModel) as exc:
            raise CommandError(str(exc)) from None
        # Written beside the target and renamed: never a half-written submission.
        descriptor, partial = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.")
        try:
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(submissions.submission(labels))
            os.replace(partial, out)
        finally:
            Path(partial).unlink(missing_ok=True)
        self.stdout.write(f"{len(labels):,} predictions by {which} written to {out}")
