"""One address sends the worst cheap-but-costly requests at full speed; does another
address still get its predictions answered in time?

    .venv/bin/python benchmarks/hostile_load.py [--seconds 20] [--attackers 6] [--no-limits]

The app runs as ``make run`` starts it (gunicorn, gevent workers) with its
default rate limits; ``--no-limits`` turns them off, so that every hostile
request reaches the code that must refuse it cheaply. From
127.0.0.2, ``--attackers`` threads cycle at full speed through: a progressive
1024×1024 JPEG of 170,000 empty scans (2 MB) to ``/api/predict/`` and to
``/api/drawings/``, a PNG of 174,000 empty chunks (2 MB), and a 3 MB JSON body
of a million empty arrays. From 127.0.0.3 a victim sends a real canvas PNG
every 50 ms. Prints the victim's latencies and failures, and what the attacker
was answered. Target: the victim's p99 under 100 ms.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import multiprocessing
import os
import time
from collections import Counter

import _django  # noqa: F401
from _django import ROOT
from _server import canvas_bodies, latency_summary, predict_client, running_app

# The attackers' own work (sending 100 MB/s over loopback) runs on the same two
# cores as the server: at the lowest priority it takes only CPU the server leaves,
# so what is measured is the server's cost of refusing, not the load generator's.
# --fair-attackers gives them normal priority instead.
NICENESS = 19


def hostile_bodies() -> list[tuple[str, bytes]]:
    import sys

    sys.path.insert(0, str(ROOT))
    from tests.hostile import many_arrays_json, many_chunk_png, many_scan_jpeg

    def url(data: bytes) -> str:
        return "data:image/jpeg;base64," + base64.b64encode(data).decode()

    jpeg, png = many_scan_jpeg(170_000), many_chunk_png(174_000)
    return [
        ("/api/predict/", json.dumps({"image": url(jpeg)}).encode()),
        ("/api/drawings/", json.dumps({"image": url(jpeg), "label": 3}).encode()),
        ("/api/predict/", json.dumps({"image": url(png)}).encode()),
        ("/api/predict/", many_arrays_json(1_000_000)),
    ]


def attacker(host, port, bodies, seconds, results):
    """One attacking connection, in a process of its own (so that the victim's
    timings never wait for the attackers' GIL)."""
    os.nice(NICENESS)
    stop_at = time.monotonic() + seconds
    answers: Counter = Counter()
    connection = http.client.HTTPConnection(host, port, timeout=60, source_address=("127.0.0.2", 0))
    i = 0
    while time.monotonic() < stop_at:
        path, body = bodies[i % len(bodies)]
        try:
            connection.request("POST", path, body, {"Content-Type": "application/json"})
            response = connection.getresponse()
            response.read()
            answers[response.status] += 1
        except OSError as exc:
            answers[type(exc).__name__] += 1
            connection = http.client.HTTPConnection(host, port, timeout=60,
                                                    source_address=("127.0.0.2", 0))  # fmt: skip
        i += 1
    results.put(dict(answers))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--attackers", type=int, default=6)
    parser.add_argument("--no-limits", action="store_true", help="rate limits off")
    parser.add_argument("--fair-attackers", action="store_true",
                        help="attackers at normal priority, competing for the cores")  # fmt: skip
    args = parser.parse_args()
    global NICENESS
    NICENESS = 0 if args.fair_attackers else NICENESS
    hostile, canvas = hostile_bodies(), canvas_bodies()
    if args.no_limits:
        rates = {"DIGITS_PREDICT_RATE": "100000000/min", "DIGITS_CONTRIBUTE_RATE": "100000000/min"}
    else:  # the defaults, which running_app would otherwise lift
        rates = {"DIGITS_PREDICT_RATE": "600/min", "DIGITS_CONTRIBUTE_RATE": "30/min"}
    with running_app(env=rates, data_dir=os.environ.get("HOSTILE_DATA_DIR")) as (host, port):
        for path, body in hostile:  # each refused, and how
            connection = http.client.HTTPConnection(host, port, timeout=60)
            started = time.perf_counter()
            connection.request("POST", path, body, {"Content-Type": "application/json"})
            response = connection.getresponse()
            answer = response.read()[:90].decode(errors="replace")
            took = (time.perf_counter() - started) * 1000
            print(
                f"{path:15} {len(body) / 1e6:4.1f} MB → {response.status} in {took:6.1f} ms {answer}"
            )
        results: multiprocessing.Queue = multiprocessing.Queue()
        attackers = [
            multiprocessing.Process(
                target=attacker, args=(host, port, hostile, args.seconds, results)
            )
            for _ in range(args.attackers)
        ]
        for process in attackers:
            process.start()
        timings: list[float] = []
        failures: list = []
        predict_client(host, port, canvas, time.monotonic() + args.seconds, timings, failures,
                       0, source="127.0.0.3", pause=0.05)  # the victim  # fmt: skip
        answers: Counter = Counter()
        for _ in attackers:
            answers.update(results.get(timeout=120))
        for process in attackers:
            process.join()
    print(f"rate limits {'off' if args.no_limits else 'as by default'}; attackers at "
          f"niceness {NICENESS}")  # fmt: skip
    print(f"attacker ({args.attackers} threads, {args.seconds:.0f} s): "
          f"{sum(answers.values())} requests answered {dict(answers)}")  # fmt: skip
    print(f"victim: {len(timings)} predictions, {len(failures)} failed {Counter(failures)}")
    print(f"victim latency: {latency_summary(timings)}  max {max(timings):.1f} ms")


if __name__ == "__main__":
    main()
