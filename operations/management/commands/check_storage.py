"""``manage.py check_storage [--fix] [--grace-minutes N]``: see ``operations.integrity``."""

from __future__ import annotations

from datetime import timedelta

from django.core.management.base import BaseCommand

from operations import integrity


class Command(BaseCommand):
    help = (
        "Report files no row points at, rows whose file is missing or damaged, and files "
        "others can read; --fix removes old orphans and makes the data directory owner-only."
    )

    def add_arguments(self, parser):
        parser.add_argument("--fix", action="store_true", help="remove old orphans, fix modes")
        parser.add_argument(
            "--grace-minutes",
            type=float,
            default=60,
            help="orphans younger than this may belong to a request still running (60)",
        )

    def handle(self, *args, fix: bool, grace_minutes: float, **options):
        report = integrity.check(fix=fix, grace=timedelta(minutes=grace_minutes))
        sections = [
            ("removed orphan file(s)", report.removed),
            ("orphan file(s), no row points at them (--fix removes them)", report.orphans),
            ("orphan file(s) younger than the grace period, left alone", report.young_orphans),
            ("row(s) whose file is missing", report.missing),
            ("row(s) whose file is damaged", report.damaged),
            ("path(s) others can read (--fix makes them owner-only)", report.loosened),
            ("path(s) made owner-only", report.tightened),
        ]
        for title, items in sections:
            if items:
                self.stdout.write(f"{len(items)} {title}:")
                for item in items[:50]:
                    self.stdout.write(f"  {item}")
                if len(items) > 50:
                    self.stdout.write(f"  … and {len(items) - 50} more")
        if report.missing or report.damaged:
            self.stdout.write(
                self.style.WARNING(
                    "Restore them from a backup (manage.py restore), or delete those drawings "
                    "in the admin; training skips them meanwhile."
                )
            )
        if report.clean and not report.removed:
            self.stdout.write(self.style.SUCCESS("Storage and database agree."))
