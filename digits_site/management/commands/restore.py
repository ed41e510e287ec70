"""``manage.py restore IN``: a backup into an empty, migrated instance."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from digits_site.backups import BackupError, restore_backup


class Command(BaseCommand):
    help = "Restore a backup made by `manage.py backup` into an empty instance."

    def add_arguments(self, parser):
        parser.add_argument("source", type=Path)

    def handle(self, *args, source: Path, **options):
        if not source.exists():
            raise CommandError(f"{source} does not exist.")
        try:
            manifest = restore_backup(source)
        except BackupError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"restored the database and {len(manifest['files'])} files from {source}")
