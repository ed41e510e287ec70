"""Sustained prediction throughput of the production-style server on loopback.

    .venv/bin/python benchmarks/predict_throughput.py [--seconds 30] [--clients 8]

Concurrent clients (threads, keep-alive connections) send real canvas PNGs, with
the strokes the page recorded as every live prediction sends them (unless
``--no-strokes``), to
``POST /api/predict/`` of the app started as ``make run`` starts it, for a
bounded time. Prints requests/s, p50/p95/p99 and the error count.
Target on the 2-core machine: ≥ 550 predictions/s with zero errors.
"""

from __future__ import annotations

import argparse
import threading
import time

import _django  # noqa: F401
from _server import (
    canvas_bodies,
    latency_summary,
    predict_client,
    run_concurrently,
    running_app,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument(
        "--no-strokes", action="store_true", help="the PNG alone, without the page's strokes"
    )
    args = parser.parse_args()
    bodies = canvas_bodies(strokes=not args.no_strokes)
    with running_app() as (host, port):
        timings: list[float] = []
        errors: list = []
        stop_at = time.monotonic() + args.seconds
        threads = [
            threading.Thread(
                target=predict_client, args=(host, port, bodies, stop_at, timings, errors, k)
            )
            for k in range(args.clients)
        ]
        elapsed = run_concurrently(threads)
    sent = "PNG" if args.no_strokes else "PNG and its strokes"
    print(f"{args.clients} clients for {elapsed:.1f} s against gunicorn ({len(timings)} "
          f"requests, each a {sent})")  # fmt: skip
    print(f"throughput: {len(timings) / elapsed:.0f} predictions/s")
    print(f"latency: {latency_summary(timings)}")
    print(f"errors: {len(errors)}" + (f" (first: {errors[0]})" if errors else ""))


if __name__ == "__main__":
    main()
