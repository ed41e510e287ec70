"""``manage.py ensure_model``: make sure some model version is active (no prompt)."""

from django.core.management.base import BaseCommand

from classifier.registry import ensure_active_model


class Command(BaseCommand):
    help = "Register and activate the committed bootstrap model if no model version is active."

    def handle(self, *args, **options):
        version, created = ensure_active_model()
        verb = "registered bootstrap" if created else "active"
        self.stdout.write(f"{verb} model version {version.version} ({version.architecture})")
