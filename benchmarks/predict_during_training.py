"""Prediction latency while a training run works on the same machine.

    .venv/bin/python benchmarks/predict_during_training.py [--seconds 40]

The app as ``make run`` starts it (gunicorn, embedded Redis, one Celery
worker). One client predicts, one request at a time, for ``--seconds`` on the
idle server; then a staff client starts a default-recipe run through the API
and, once the worker has it running, the client predicts for ``--seconds``
again. Done twice: with training at normal priority (how it was), and as
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
import time

import _django  # noqa: F401
from _server import ROOT, canvas_bodies, percentile, running_app


def predict_for(port: int, bodies: list[bytes], seconds: float) -> list[float]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    timings = []
    stop_at = time.monotonic() + seconds
    i = 0
    while time.monotonic() < stop_at:
        started = time.perf_counter()
        connection.request("POST", "/api/predict/", bodies[i % len(bodies)],
                           {"Content-Type": "application/json"})  # fmt: skip
        response = connection.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"prediction answered {response.status}")
        timings.append((time.perf_counter() - started) * 1000)
        i += 1
    return timings


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=40)
    parser.add_argument("--epochs", type=int, default=5)
    args = parser.parse_args()
    bodies = canvas_bodies()
    for priority in ("normal", "idle"):
        with tempfile.TemporaryDirectory() as data_dir:
            env = {"DIGITS_TRAINING_PRIORITY": priority}
            with running_app(env=env, data_dir=data_dir, worker=True) as (_, port):
                token = staff_token(data_dir)
                predict_for(port, bodies, 2)  # warm-up
                idle = predict_for(port, bodies, args.seconds)
                run = api(port, "POST", "/api/training-runs/", token, {"epochs": args.epochs})
                deadline = time.monotonic() + 120
                while (
                    api(port, "GET", f"/api/training-runs/{run['id']}/", token)["status"]
                    != "running"
                ):
                    if time.monotonic() > deadline:
                        raise RuntimeError("the run never started")
                    time.sleep(0.5)
                busy = predict_for(port, bodies, args.seconds)
                status = api(port, "GET", f"/api/training-runs/{run['id']}/", token)["status"]
                api(port, "POST", f"/api/training-runs/{run['id']}/cancel/", token, {})
        print(f"training priority: {priority} (the run was still {status} at the end)")
        print("  " + line("idle", idle))
        print("  " + line("training", busy))
        print(
            f"  p99 during / idle: {percentile(busy, 99) / percentile(idle, 99):.2f}×   "
            f"p50: {percentile(busy, 50) / percentile(idle, 50):.2f}×"
        )


if __name__ == "__main__":
    main()
