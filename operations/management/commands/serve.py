"""``manage.py serve``: what ``make run`` starts, supervised, all stopped together
by Ctrl-C.

A private Redis on a unix socket under the data directory (unless ``REDIS_URL``
points elsewhere), a Celery worker for the ``training`` queue and one for the
``background`` queue, then gunicorn (async workers, configured in
``digits_site.gunicorn_conf``). A child that dies is started again with a
back-off (``operations.services.Supervisor``) while the others go on: the site
keeps serving through a dead Redis or worker. Logs go to the data directory's
``logs/``.
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
        stop = services.StopSignal()
        supervisor = services.Supervisor(log=self.stderr.write, on_death=self._fail_orphans)
        embedded = services.uses_embedded_redis()
        web_command = [
            sys.executable, "-m", "gunicorn",
            "--config", "python:digits_site.gunicorn_conf",
            "--bind", f"{host}:{port}",
            "--workers", str(workers),
            "--access-logfile", str(log_dir / "access.log"),
            "--error-logfile", str(log_dir / "web.log"),
        ]  # fmt: skip
        try:
            # In order: Redis before the workers (and before anything queues work).
            if embedded:
                supervisor.add("redis", lambda: services.start_embedded_redis(
                    settings.EMBEDDED_REDIS_SOCKET, log_dir))  # fmt: skip
            if not no_worker:
                supervisor.add("worker", lambda: services.start_worker(log_dir))
                supervisor.add(
                    "background worker", lambda: services.start_worker(log_dir, queue="background")
                )
            supervisor.add("web server", lambda: subprocess.Popen(web_command))
        except services.ServiceError as exc:
            services.stop(*supervisor.processes())
            raise CommandError(str(exc)) from exc

        shown = "127.0.0.1" if host in {"0.0.0.0", "::"} else host
        broker = "embedded Redis" if embedded else settings.CELERY_BROKER_URL.split("@")[-1]
        self.stdout.write(self.style.SUCCESS(f"Digits is running at http://{shown}:{port}/"))
        self.stdout.write(
            f"  {workers} web workers · "
            f"{'no workers' if no_worker else '1 training and 1 background worker'} · "
            f"{broker} · data in {settings.DIGITS_DATA_DIR} · logs in {log_dir}"
        )
        if not no_worker:
            self._score_what_was_missed()
        if not no_worker and settings.DIGITS_WARM_CACHES:
            from training.tasks import warm_caches_soon

            # What the first fine-tune loads, built now by the background worker.
            warm_caches_soon()
        self.stdout.write("  Press Ctrl-C to stop.")
        supervisor.run(stop)
        self.stdout.write("Stopping…")
        services.stop(*reversed(supervisor.processes()))
        self.stdout.write("Stopped.")

    def _score_what_was_missed(self) -> None:
        """A promotion made while no broker ran (a command, a restore) could not
        queue the drawings' re-scoring: queue it now that Redis is up."""
        from collector import tasks
        from collector.models import Drawing

        try:
            if Drawing.objects.exists():
                tasks.enqueue_scoring()
        except Exception as exc:  # the database may be the trouble: never stop serving
            self.stderr.write(f"Could not queue scoring of drawings: {exc}")

    def _fail_orphans(self, name: str) -> None:
        """A training worker that died leaves its run ``running``: fail it now (its
        process is gone), not at the next start or heartbeat timeout."""
        if name != "worker":
            return
        from training.models import TrainingRun

        try:
            failed = TrainingRun.objects.fail_orphaned()
        except Exception as exc:  # the database may be the trouble: never stop serving
            self.stderr.write(f"Could not check for orphaned runs: {exc}")
            return
        if failed:
            self.stderr.write(f"Marked {failed} run(s) of the dead worker failed.")
