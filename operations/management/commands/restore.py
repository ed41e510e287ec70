"""``manage.py restore IN``: a backup into a fresh instance.

Fresh: an empty data directory (the database is created and migrated first), or
one that ``make run`` prepared, which holds only the bootstrap model. Stopped part
way, run it again: the files it stored already are kept.
"""

from pathlib import Path

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from operations.backups import BackupError, restore_backup
from operations.progress import ProgressBars


class Command(BaseCommand):
    help = (
        "Restore a backup made by `manage.py backup` into a fresh instance: an empty data "
        "directory, or one holding only the bootstrap model."
    )

    def add_arguments(self, parser):
        parser.add_argument("source", type=Path)

    def handle(self, *args, source: Path, **options):
        if not source.exists():
            raise CommandError(f"{source} does not exist.")
        call_command("migrate", interactive=False, verbosity=0)  # an empty data directory
        try:
            with ProgressBars(quiet=options["verbosity"] == 0) as progress:
                manifest = restore_backup(source, progress)
        except BackupError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"restored the database and {manifest['files']} files from {source}")
