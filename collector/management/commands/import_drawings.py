"""``manage.py import_drawings pendigits FILE | ndjson FILE | folder DIR | zip FILE |
kaggle FILE``."""

from __future__ import annotations

import time
import zipfile
from pathlib import Path

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from classifier.runtime import NoActiveModel
from collector import imports, scoring, tasks
from collector.formats import DatasetError
from collector.models import Drawing

KINDS = imports.KINDS


class Command(BaseCommand):
    help = (
        "Import drawings (idempotent): UNIPEN pen digits or ndjson strokes rendered like the "
        "canvas, a folder with one sub-folder per label, a Kaggle train.csv, or a zip made "
        "by export_dataset."
    )

    def add_arguments(self, parser):
        parser.add_argument("kind", choices=sorted(KINDS))
        parser.add_argument("path", type=Path)
        parser.add_argument(
            "--status",
            choices=Drawing.Status.values,
            default=None,
            help="status of imported drawings (default: approved; zip keeps its own)",
        )

    def handle(self, *args, kind: str, path: Path, status: str | None, **options):
        if not path.exists():
            raise CommandError(f"{path} does not exist.")
        if kind == "folder" and not path.is_dir():
            raise CommandError(f"{path} is not a folder.")
        # An empty data directory gets its database first, as ``restore`` does.
        call_command("migrate", interactive=False, verbosity=0)
        started = time.monotonic()
        try:
            items, total = imports.open_items(kind, path)
        except (DatasetError, OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
            raise CommandError(f"Cannot read {path}: {exc}") from exc
        # A zip export keeps each drawing's own status; other imports are approved
        # by default (running the import is the admin's decision).
        default_status = status or (None if kind in imports.OWN_STATUS else Drawing.Status.APPROVED)
        with tqdm(total=total, unit="drawing", disable=options["verbosity"] == 0) as bar:
            try:
                summary = imports.run_import(items, status=default_status, progress=bar.update)
            except (DatasetError, OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
                # read as it goes: a file damaged half way is found half way (what
                # was stored stays; run again once it is mended, nothing is doubled)
                raise CommandError(f"Cannot read {path}: {exc}") from exc
        imports.record_import(summary, path.name, kind)
        seconds = time.monotonic() - started
        self.stdout.write(f"{kind} {path}: {summary.line()} in {seconds:.1f} s")
        self._score(options["verbosity"])

    def _score(self, verbosity: int) -> None:
        """Imports carry no model guess: a background worker adds the active model's
        (or, with no broker to ask, this command does)."""
        if tasks.enqueue_scoring():
            if verbosity:
                self.stdout.write("The background worker is scoring them with the active model.")
            return
        try:
            scored = scoring.score()
        except NoActiveModel:
            return
        if verbosity:
            self.stdout.write(f"scored {scored} drawing(s) with the active model")
