"""``manage.py serve``: the production-style web server that ``make run`` starts.

gunicorn with sync workers (LiteRT answers in about a millisecond, so a
worker per core-ish beats threads fighting over one interpreter), logs under
the data directory, and a clean stop on Ctrl-C.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand


def default_workers() -> int:
    return int(os.environ.get("WEB_CONCURRENCY") or 2 * (os.cpu_count() or 1) + 1)


class Command(BaseCommand):
    help = "Serve the app with gunicorn on HOST:PORT (default 127.0.0.1:8000) and print the URL."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument("--workers", type=int, default=default_workers())

    def handle(self, *args, host: str, port: int, workers: int, **options):
        log_dir = Path(settings.LOG_DIR)
        log_dir.mkdir(parents=True, exist_ok=True)
        command = [
            sys.executable, "-m", "gunicorn", "digits_site.wsgi:application",
            "--bind", f"{host}:{port}",
            "--workers", str(workers),
            "--access-logfile", str(log_dir / "access.log"),
            "--error-logfile", str(log_dir / "web.log"),
            "--graceful-timeout", "10",
            "--timeout", "30",
        ]  # fmt: skip
        server = subprocess.Popen(command)
        shown = "127.0.0.1" if host in {"0.0.0.0", "::"} else host
        self.stdout.write(self.style.SUCCESS(f"Digits is running at http://{shown}:{port}/"))
        self.stdout.write(
            f"  {workers} web workers · data in {settings.DIGITS_DATA_DIR} · logs in {log_dir}"
        )
        self.stdout.write("  Press Ctrl-C to stop.")

        def stop(signum, frame):
            server.terminate()

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        code = server.wait()
        self.stdout.write("Stopped.")
        if code not in (0, -signal.SIGTERM):
            sys.exit(code)
