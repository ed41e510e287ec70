"""``manage.py backup OUT``: database + drawings + model artifacts in one zip
(``operations.backups``)."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from operations.backups import write_backup
from operations.progress import ProgressBars


class Command(BaseCommand):
    help = "Write the database and every stored file (drawings, models, plots) to a zip."

    def add_arguments(self, parser):
        parser.add_argument("out", type=Path)

    def handle(self, *args, out: Path, **options):
        if not out.parent.exists():
            raise CommandError(f"{out.parent} does not exist.")
        with ProgressBars(quiet=options["verbosity"] == 0) as progress:
            manifest = write_backup(out, progress)
        self.stdout.write(f"backed up the database and {manifest['files']} files to {out}")
