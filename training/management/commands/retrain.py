"""``manage.py retrain [--preset NAME] [--wait]``: a run through Celery, not in-process.

The last line is ``run=<id> status=<status> version=<v or ->``.
"""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from training import tasks
from training.config import PRESETS, preset_fields
from training.models import TrainingRun

# The line's text is tqdm's "desc", placed at the end: its "postfix" starts with a comma.
BAR_FORMAT = "{percentage:3.0f}%|{bar}| {desc}"


class Command(BaseCommand):
    help = "Queue a training run for a Celery worker; with --wait, follow it to the end."

    def add_arguments(self, parser):
        parser.add_argument("--preset", default="default", choices=sorted(PRESETS))
        parser.add_argument(
            "--wait", action="store_true", help="show progress; fail if the run fails"
        )
        parser.add_argument("--timeout", type=float, default=None, help="seconds to wait at most")

    def handle(self, *args, preset: str, wait: bool, timeout: float | None, **options):
        try:
            run = tasks.start_run(preset=preset, **preset_fields(preset))
        except tasks.BrokerUnavailable as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"queued run {run.pk} ({preset})")
        if wait:
            run = self._follow(run, timeout, quiet=options["verbosity"] == 0)
        version = run.model_version.version if run.model_version else "-"
        if run.gate:
            verdict = "promoted" if run.gate.get("passed") else "rejected"
            self.stdout.write(f"gate: {verdict} {'; '.join(run.gate.get('reasons', []))}".rstrip())
        if run.error:
            self.stdout.write(run.error.splitlines()[0])
        self.stdout.write(f"run={run.pk} status={run.status} version={version}")
        if wait and run.status != TrainingRun.Status.SUCCEEDED:
            raise CommandError(f"run {run.pk} ended {run.status}")

    def _follow(self, run: TrainingRun, timeout: float | None, quiet: bool) -> TrainingRun:
        deadline = None if timeout is None else time.monotonic() + timeout
        with tqdm(total=100, unit="%", disable=quiet, bar_format=BAR_FORMAT) as bar:
            while True:
                run.refresh_from_db()
                bar.n = round(run.progress * 100)
                bar.set_description_str(run.progress_text)
                if run.is_finished:
                    return run
                if deadline is not None and time.monotonic() > deadline:
                    raise CommandError(f"run {run.pk} still {run.status} after {timeout} s")
                time.sleep(1)
