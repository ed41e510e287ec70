"""``manage.py cluster``: docker-compose.yml's topology as processes on this machine.

PostgreSQL, Redis on TCP, nginx in front of two web servers, two training
workers and a background worker, sharing one media folder; all stopped by
Ctrl-C. For trying the scale-out set-up without Docker, and what the topology
test runs (``operations/cluster.py`` says what each piece is).
"""

from __future__ import annotations

import sys
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from operations import services
from operations.cluster import Cluster


class Command(BaseCommand):
    help = "Run the scale-out topology (PostgreSQL, Redis, nginx, 2 web, 2 workers) on loopback."

    def add_arguments(self, parser):
        parser.add_argument(
            "--dir",
            type=Path,
            default=None,
            help="where its database, media, logs and hosts' folders live "
            "(default: DIGITS_DATA_DIR/cluster; kept between runs)",
        )
        parser.add_argument("--port", type=int, default=8080, help="nginx, the address to use")
        parser.add_argument("--web-ports", default="8001,8002", help="one per web server")
        parser.add_argument("--postgres-port", type=int, default=55433)
        parser.add_argument("--redis-port", type=int, default=6390)
        parser.add_argument("--training-workers", type=int, default=2)
        parser.add_argument(
            "--database-url",
            default="",
            help="use this PostgreSQL instead of starting a private one under --dir",
        )

    def handle(self, *args, **options):
        folder = (options["dir"] or Path(settings.DIGITS_DATA_DIR) / "cluster").resolve()
        try:
            web_ports = tuple(int(p) for p in options["web_ports"].split(","))
        except ValueError:
            raise CommandError("--web-ports is a comma-separated list of ports.") from None
        cluster = Cluster(
            folder,
            port=options["port"],
            web_ports=web_ports,
            postgres_port=options["postgres_port"],
            redis_port=options["redis_port"],
            training_workers=options["training_workers"],
            database_url=options["database_url"],
        )
        stop = services.StopSignal()
        self.stdout.write(f"Starting the cluster in {folder}…")
        try:
            cluster.start()
        except services.ServiceError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(self.style.SUCCESS(f"Digits (cluster) is running at {cluster.url}/"))
        self.stdout.write(
            f"  nginx :{cluster.port} → web servers :{', :'.join(map(str, web_ports))} · "
            f"{cluster.training_workers} training workers + 1 background · "
            f"PostgreSQL {cluster.database_url.rsplit('@', 1)[-1]} · "
            f"Redis 127.0.0.1:{cluster.redis_port} · media {cluster.media} · logs {cluster.logs}"
        )
        self.stdout.write("  Press Ctrl-C to stop.")
        dead = stop.wait(cluster.processes)
        if dead:
            self.stderr.write(f"Stopped by itself: {', '.join(dead)}; see {cluster.logs}.")
        self.stdout.write("Stopping…")
        cluster.stop()
        self.stdout.write("Stopped.")
        if dead:
            sys.exit(1)
