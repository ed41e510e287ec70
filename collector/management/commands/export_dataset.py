"""``manage.py export_dataset --format zip|npz|idx|kaggle-csv OUT``."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from collector import exports
from collector.models import Drawing


class Command(BaseCommand):
    help = (
        "Export the dataset: zip = original PNGs + manifest.csv (all statuses); npz/idx/"
        "kaggle-csv = 28×28 model inputs (approved drawings unless --status says otherwise)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--format", choices=exports.FORMATS, default="zip")
        parser.add_argument("--status", choices=[*Drawing.Status.values, "all"], default=None)
        parser.add_argument("out", type=Path)

    def handle(self, *args, out: Path, status: str | None, **options):
        fmt = options["format"]
        if not out.parent.exists():
            raise CommandError(f"{out.parent} does not exist.")
        try:
            count = exports.export(out, fmt, status)
        except exports.ExportError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"exported {count} drawings as {fmt} to {out}")
