"""Prediction latency while a training run works on the same machine.

    .venv/bin/python benchmarks/predict_during_training.py [--seconds 40]

The app as ``make run`` starts it (gunicorn, embedded Redis, one Celery
worker). One client predicts, one request at a time, for ``--seconds`` on the
idle server; then a staff client starts a default-recipe run through the API
and the client keeps predicting through both phases of the run: loading (the
data is read and the variant pools are rendered in worker processes, in a fresh
data directory as on a first run) and fitting, for ``--seconds`` of fitting.
The run is then cancelled and the idle server measured again; "idle" pools the
windows before and after, so a quiet or a busy moment of the machine does not
decide the ratio. Done with training at normal priority (how it was), and as
``make run`` does now (``DIGITS_TRAINING_PRIORITY=idle``, ``training.priority``).
Target: p99 during a run at most 1.5× idle.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

import _django  # noqa: F401
from _server import ROOT, canvas_bodies, percentile, running_app


class Predictor:
    """One client on one kept-alive connection: a prediction at a time, timed."""

    def __init__(self, port: int, bodies: list[bytes]) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        self.bodies = bodies
        self.sent = 0

    def one(self) -> float:
        started = time.perf_counter()
        self.connection.request(
            "POST", "/api/predict/", self.bodies[self.sent % len(self.bodies)],
            {"Content-Type": "application/json"},
        )  # fmt: skip
        response = self.connection.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"prediction answered {response.status}")
        self.sent += 1
        return (time.perf_counter() - started) * 1000

    def for_seconds(self, seconds: float) -> list[float]:
        stop_at = time.monotonic() + seconds
        timings = []
        while time.monotonic() < stop_at:
            timings.append(self.one())
        return timings


class RunWatcher(threading.Thread):
    """Polls the run every second on its own connection, so the predicting client
    knows the phase without spending its own requests on it."""

    def __init__(self, port: int, token: str, run_id: int) -> None:
        super().__init__(daemon=True)
        self.port, self.token, self.run_id = port, token, run_id
        self.state: dict = {}
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            self.state = api(self.port, "GET", f"/api/training-runs/{self.run_id}/", self.token)
            self.stopped.wait(1)

    @property
    def fitting(self) -> bool:
        return self.state.get("steps_per_epoch", 0) > 0

    @property
    def finished(self) -> bool:
        return self.state.get("status") not in (None, "queued", "running")


def staff_token(data_dir: str) -> str:
    code = (
        "from django.contrib.auth.models import User\n"
        "from rest_framework.authtoken.models import Token\n"
        "u = User.objects.create_superuser('bench', 'bench@example.com', 'bench-pass-853')\n"
        "print(Token.objects.create(user=u).key)\n"
    )
    out = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "shell", "-c", code],
        env={**os.environ, "DIGITS_DATA_DIR": data_dir}, capture_output=True, text=True,
        check=True,
    )  # fmt: skip
    return out.stdout.strip().splitlines()[-1]


def api(port: int, method: str, path: str, token: str, body: dict | None = None) -> dict:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request(
        method, path, json.dumps(body) if body is not None else None,
        {"Content-Type": "application/json", "Authorization": f"Token {token}"},
    )  # fmt: skip
    response = connection.getresponse()
    return json.loads(response.read())


def line(name: str, timings: list[float]) -> str:
    return (
        f"{name:<8} p50 {percentile(timings, 50):5.2f} ms  p95 {percentile(timings, 95):5.2f} ms  "
        f"p99 {percentile(timings, 99):6.2f} ms  (n={len(timings)})"
    )


def during_run(
    client: Predictor, port: int, token: str, epochs: int, seconds: float
) -> tuple[list[float], list[float], str]:
    """Timings while loading, timings while fitting (``seconds`` of it), and how the
    run stood at the end; the run is cancelled and gone when this returns."""
    run = api(port, "POST", "/api/training-runs/", token, {"epochs": epochs})
    watcher = RunWatcher(port, token, run["id"])
    watcher.start()
    deadline = time.monotonic() + 120
    while watcher.state.get("status") != "running":
        if time.monotonic() > deadline or watcher.finished:
            raise RuntimeError(f"the run never started: {watcher.state}")
        time.sleep(0.2)
    loading, fitting = [], []
    fitting_until = None
    deadline = time.monotonic() + 600
    while not watcher.finished and time.monotonic() < deadline:
        if watcher.fitting and fitting_until is None:
            fitting_until = time.monotonic() + seconds
        if fitting_until is not None and time.monotonic() > fitting_until:
            break
        (fitting if fitting_until is not None else loading).append(client.one())
    status = f"{watcher.state.get('status')}, epoch {watcher.state.get('epoch')}"
    api(port, "POST", f"/api/training-runs/{run['id']}/cancel/", token, {})
    while not watcher.finished:  # the worker stops at its next step
        time.sleep(0.5)
    watcher.stopped.set()
    watcher.join()
    return loading, fitting, status


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=40)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--priorities", nargs="+", default=["normal", "idle"])
    args = parser.parse_args()
    bodies = canvas_bodies()
    for priority in args.priorities:
        with tempfile.TemporaryDirectory() as data_dir:
            env = {"DIGITS_TRAINING_PRIORITY": priority}
            with running_app(env=env, data_dir=data_dir, worker=True) as (_, port):
                token = staff_token(data_dir)
                client = Predictor(port, bodies)
                client.for_seconds(2)  # warm-up
                idle = client.for_seconds(args.seconds / 2)
                loading, fitting, status = during_run(
                    client, port, token, args.epochs, args.seconds
                )
                idle += client.for_seconds(args.seconds / 2)
        during = loading + fitting
        print(f"training priority: {priority} (the run was {status} when cancelled)")
        print("  " + line("idle", idle))
        print("  " + line("loading", loading))
        print("  " + line("fitting", fitting))
        print("  " + line("run", during))
        print(
            f"  p99 during the run / idle: {percentile(during, 99) / percentile(idle, 99):.2f}×"
            f"   (loading {percentile(loading, 99) / percentile(idle, 99):.2f}×,"
            f" fitting {percentile(fitting, 99) / percentile(idle, 99):.2f}×)"
            f"   p50: {percentile(during, 50) / percentile(idle, 50):.2f}×"
        )


if __name__ == "__main__":
    main()
