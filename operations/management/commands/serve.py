"""``manage.py serve``: what ``make run`` starts, all stopped together by Ctrl-C.

gunicorn (async workers, configured in ``digits_site.gunicorn_conf``), a Celery
worker for the ``training`` queue, and, unless ``REDIS_URL`` points elsewhere,
a private Redis on a unix socket under the data directory. Logs go to the
data directory's ``logs/``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from digits_site import gunicorn_conf
from operations import services


class Command(BaseCommand):
    help = "Serve the app (gunicorn + Celery worker + embedded Redis) and print the URL."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument("--workers", type=int, default=gunicorn_conf.workers)
        parser.add_argument(
            "--no-worker",
            action="store_true",
            default=os.environ.get("DIGITS_RUN_WORKER", "1") == "0",
            help="do not start a Celery training worker here",
        )

    def handle(self, *args, host: str, port: int, workers: int, no_worker: bool, **options):
        log_dir = Path(settings.LOG_DIR)
        log_dir.mkdir(parents=True, exist_ok=True)
        redis = worker = background = web = None
        stop = services.StopSignal()
        try:
            if services.uses_embedded_redis():
                redis = services.start_embedded_redis(settings.EMBEDDED_REDIS_SOCKET, log_dir)
            if not no_worker:
                worker = services.start_worker(log_dir)
                background = services.start_worker(log_dir, queue="background")
            web = subprocess.Popen(
                [
                    sys.executable, "-m", "gunicorn",
                    "--config", "python:digits_site.gunicorn_conf",
                    "--bind", f"{host}:{port}",
                    "--workers", str(workers),
                    "--access-logfile", str(log_dir / "access.log"),
                    "--error-logfile", str(log_dir / "web.log"),
                ]
            )  # fmt: skip
        except services.ServiceError as exc:
            services.stop(web, worker, background, redis)
            raise CommandError(str(exc)) from exc

        shown = "127.0.0.1" if host in {"0.0.0.0", "::"} else host
        broker = "embedded Redis" if redis else settings.CELERY_BROKER_URL.split("@")[-1]
        self.stdout.write(self.style.SUCCESS(f"Digits is running at http://{shown}:{port}/"))
        self.stdout.write(
            f"  {workers} web workers · "
            f"{'no workers' if worker is None else '1 training and 1 background worker'} · "
            f"{broker} · data in {settings.DIGITS_DATA_DIR} · logs in {log_dir}"
        )
        self.stdout.write("  Press Ctrl-C to stop.")
        processes = {
            "web server": web, "worker": worker, "background worker": background, "redis": redis
        }  # fmt: skip
        dead = stop.wait(processes)
        for name in dead:
            code = processes[name].returncode
            self.stderr.write(f"The {name} stopped (exit {code}); see {log_dir}.")
        self.stdout.write("Stopping…")
        services.stop(web, worker, background, redis)
        self.stdout.write("Stopped.")
        if dead:
            sys.exit(1)
