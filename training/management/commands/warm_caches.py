"""``manage.py warm_caches [--preset finetune] [--background]``: build what a run of
the preset loads (the pen digits' renders and variant pools, the rendered test
sets, every drawing's cached inputs), on every CPU this process may use.

``manage.py serve`` has the background worker run it at every start (a fresh
instance's first fine-tune then trains instead of rendering for minutes; a warm
one finds everything in seconds). It runs as a process of its own because a
Celery worker's child is daemonic and may start no rendering processes: inside
one, the same work took 4.3 minutes on one core instead of about two on two.
Run it at install or image build time to have a new machine ready at once.
"""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand

from training.config import PRESETS, preset_config


class Command(BaseCommand):
    help = "Build the caches a run of the preset loads, in parallel, and say how long each took."

    def add_arguments(self, parser):
        parser.add_argument("--preset", default="finetune", choices=sorted(PRESETS))
        parser.add_argument("--limit", type=int, default=None, help="images per source at most")
        parser.add_argument(
            "--background",
            action="store_true",
            help="at the lowest CPU priority, on every CPU (serving pre-empts it at once)",
        )

    def handle(self, *args, preset: str, limit: int | None, background: bool, **options):
        from training import priority, sources

        if background:
            priority.lower(spare_cpus=False)
        config = preset_config(preset, **({"limit": limit} if limit else {}))
        started = time.monotonic()
        current: list = [None, started]

        def heard(step: str, done: int, total: int) -> None:
            if step != current[0]:
                now = time.monotonic()
                if current[0] is not None:
                    self.stdout.write(f"  {now - current[1]:6.1f} s  {current[0]}")
                current[:] = [step, now]

        sources.load_training_data(config, heard)
        heard("", 0, 0)
        self.stdout.write(f"warm in {time.monotonic() - started:.1f} s ({preset})")
