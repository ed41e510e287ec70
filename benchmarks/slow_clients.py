"""Slow clients against the server setups we could choose, side by side.

    .venv/bin/python benchmarks/slow_clients.py [--slow 200] [--seconds 15]

For each setup: one ordinary client predicts for ``--seconds`` on a quiet
server, then again while ``--slow`` connections trickle their headers (a line
every 2 s) or their bodies (a byte every 2 s), each from its own loopback
address. A request not answered within 5 s counts as an error. Setups: gunicorn
with sync workers (the old ``make run``), with threads, with gevent (what
``make run`` uses now, ``digits_site/gunicorn_conf.py``), and gevent behind
nginx with compose's configuration (``deploy/nginx/digits.conf.template``; its
per-address request rate lifted for the measuring client alone).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import _django  # noqa: F401
from _server import canvas_bodies, free_port, percentile, predict_client, running_app

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from operations import services
from tests.slowloris import SlowClients

SETUPS = {
    "gunicorn sync": ("--worker-class sync", False),
    "gunicorn gthread ×8": ("--worker-class gthread --threads 8", False),
    "gunicorn gevent": ("", False),
    "nginx → gunicorn gevent": ("", True),
}


def client(port: int, bodies: list[bytes], seconds: float) -> tuple[list[float], int]:
    timings: list[float] = []
    errors: list = []
    predict_client("127.0.0.1", port, bodies, time.monotonic() + seconds, timings, errors, 0, 5)
    return timings, len(errors)


def summary(timings: list[float], errors: int) -> str:
    return (
        f"p50 {percentile(timings, 50):7.1f} ms  p95 {percentile(timings, 95):7.1f} ms  "
        f"max {max(timings):7.0f} ms  answered {len(timings) - errors:5d}  errors {errors}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slow", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=15)
    args = parser.parse_args()
    bodies = canvas_bodies()
    have_nginx = shutil.which("nginx") or Path("/usr/sbin/nginx").exists()
    print(f"{args.slow} slow connections; one ordinary client for {args.seconds:.0f} s each way")
    for name, (gunicorn_args, via_nginx) in SETUPS.items():
        if via_nginx and not have_nginx:
            print(f"{name:<26} skipped: nginx is not installed")
            continue
        with (
            running_app(workers=5, env={"GUNICORN_CMD_ARGS": gunicorn_args}) as (_, app_port),
            tempfile.TemporaryDirectory() as folder,
        ):
            port, proxy = app_port, None
            if via_nginx:
                port = free_port()
                # The per-address request limit is lifted for the measuring client,
                # which asks far faster than a person; the slow ones meet the rest.
                proxy = services.start_nginx(
                    port, f"127.0.0.1:{app_port}", Path(folder), api_rate="100000r/s",
                    api_burst=100000,
                )  # fmt: skip
            try:
                quiet = client(port, bodies, args.seconds)
                with SlowClients("127.0.0.1", port, args.slow, many_addresses=True) as slow:
                    time.sleep(2.5)
                    attacked = client(port, bodies, args.seconds)
                    held = slow.open
            finally:
                if proxy is not None:
                    proxy.terminate()
                    proxy.wait()
        print(f"{name:<26} quiet     {summary(*quiet)}")
        print(f"{'':<26} attacked  {summary(*attacked)}  (slow ones still open: {held})")


if __name__ == "__main__":
    main()
