"""Mixed load: people predicting and contributing at once, against the real server.

    .venv/bin/python benchmarks/load.py [--seconds 60] [--predictors 6] [--contributors 3]

Starts the app as ``make run`` does (gunicorn, SQLite in a fresh data folder) and
runs browser-like clients on loopback for a bounded time: predictors POST real
canvas PNGs to ``/api/predict/``; contributors POST new labelled drawings to
``/api/drawings/``, keeping their session cookie like a browser. Every drawing is
distinct (real pen digits by all 30 writers, each placed at up to 25 positions on
the canvas), so every acknowledged contribution must become exactly one row and one
file. The contribution rate limit, daily quota, pending cap and near-duplicate
check (``collector.abuse``: a digit placed elsewhere on the canvas is a near-copy)
are lifted for this run: all clients share one IP.

Prints throughput, p50/p95/p99 latency per endpoint, the error count (must be 0),
and drawings acknowledged (201) versus rows stored versus files on disk whose
sha256 matches (all three must be equal).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import http.client
import io
import json
import sqlite3
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import _django  # noqa: F401
import numpy as np
from _server import (
    canvas_bodies,
    latency_summary,
    predict_client,
    run_concurrently,
    running_app,
)
from PIL import Image


@dataclass
class Tally:
    timings: dict[str, list[float]] = field(
        default_factory=lambda: {"predict": [], "contribute": []}
    )
    errors: list[str] = field(default_factory=list)
    acknowledged: list[tuple[int, str]] = field(default_factory=list)  # (id, sha256)
    lock: threading.Lock = field(default_factory=threading.Lock)


def contributions(limit: int) -> list[tuple[int, bytes]]:
    """Distinct (label, PNG) pairs: each pen digit, shifted by a few pixels."""
    from classifier import canvas
    from training.sources import pendigits as pen_source

    digits = pen_source.load_pendigit_strokes()
    offsets = [(dx, dy) for dx in (-6, -3, 0, 3, 6) for dy in (-6, -3, 0, 3, 6)]
    out: list[tuple[int, bytes]] = []
    for dx, dy in offsets:
        for digit in digits:
            if len(out) >= limit:
                return out
            rgba = np.array(Image.open(io.BytesIO(canvas.render_strokes(digit.strokes))))
            rgba = np.roll(rgba, (dy, dx), axis=(0, 1))
            png = io.BytesIO()
            Image.fromarray(rgba, "RGBA").save(png, "PNG")
            out.append((digit.label, png.getvalue()))
    return out


def contributor(host, port, queue, stop_at, tally):
    connection = http.client.HTTPConnection(host, port, timeout=30)
    cookie = ""
    while time.monotonic() < stop_at:
        with tally.lock:
            if not queue:
                return
            label, png = queue.pop()
        body = json.dumps(
            {"image": "data:image/png;base64," + base64.b64encode(png).decode(), "label": label}
        )
        headers = {"Content-Type": "application/json", **({"Cookie": cookie} if cookie else {})}
        started = time.perf_counter()
        try:
            connection.request("POST", "/api/drawings/", body, headers)
            response = connection.getresponse()
            payload = response.read()
            for header, value in response.getheaders():
                if header.lower() == "set-cookie" and value.startswith("sessionid="):
                    cookie = value.split(";", 1)[0]
            if response.status == 201:
                with tally.lock:
                    tally.acknowledged.append(
                        (json.loads(payload)["id"], hashlib.sha256(png).hexdigest())
                    )
            else:
                tally.errors.append(f"contribute {response.status} {payload[:120]!r}")
        except OSError as exc:
            tally.errors.append(f"contribute {exc!r}")
            connection = http.client.HTTPConnection(host, port, timeout=30)
        tally.timings["contribute"].append((time.perf_counter() - started) * 1000)


def stored(data_dir: Path) -> tuple[dict[int, str], int]:
    """Rows (id → sha256) in the database, and files whose content matches their name."""
    with sqlite3.connect(data_dir / "db.sqlite3") as db:
        rows = dict(db.execute("SELECT id, sha256 FROM collector_drawing"))
    intact = sum(
        1
        for path in (data_dir / "media" / "drawings").rglob("*.png")
        if hashlib.sha256(path.read_bytes()).hexdigest() == path.stem
    )
    return rows, intact


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--predictors", type=int, default=6)
    parser.add_argument("--contributors", type=int, default=3)
    parser.add_argument("--max-contributions", type=int, default=6000)
    args = parser.parse_args()

    prepared = time.monotonic()
    queue = contributions(args.max_contributions)
    bodies = canvas_bodies()
    print(f"prepared {len(queue)} distinct drawings in {time.monotonic() - prepared:.1f} s")
    tally = Tally()
    with tempfile.TemporaryDirectory() as data_dir:
        env = {
            "DIGITS_CONTRIBUTE_RATE": "100000000/min",
            "DIGITS_DAILY_CONTRIBUTIONS": "100000000",
            "DIGITS_PENDING_PER_CLIENT": "100000000",
            "DIGITS_NEAR_DUPLICATE_DISTANCE": "-1",
        }
        with running_app(env=env, data_dir=data_dir) as (host, port):
            stop_at = time.monotonic() + args.seconds
            threads = [
                threading.Thread(
                    target=predict_client,
                    args=(host, port, bodies, stop_at, tally.timings["predict"], tally.errors, k),
                )
                for k in range(args.predictors)
            ] + [
                threading.Thread(target=contributor, args=(host, port, queue, stop_at, tally))
                for _ in range(args.contributors)
            ]
            elapsed = run_concurrently(threads)
        rows, intact_files = stored(Path(data_dir))

    total = sum(len(t) for t in tally.timings.values())
    print(
        f"{args.predictors} predicting + {args.contributors} contributing clients for "
        f"{elapsed:.1f} s against gunicorn on loopback, SQLite"
    )
    print(f"throughput: {total / elapsed:.0f} requests/s in all")
    for name, timings in tally.timings.items():
        if timings:
            print(
                f"  {name:<10} {len(timings):>6} requests  {len(timings) / elapsed:6.1f}/s  "
                + latency_summary(timings)
            )
    print(f"errors: {len(tally.errors)}" + (f" (first: {tally.errors[0]})" if tally.errors else ""))
    acknowledged = dict(tally.acknowledged)
    lost = [i for i, sha in acknowledged.items() if rows.get(i) != sha]
    print(
        f"drawings: acknowledged {len(acknowledged)}, rows stored {len(rows)}, "
        f"intact files {intact_files}, acknowledged but missing {len(lost)}"
    )
    ok = not tally.errors and not lost and len(acknowledged) == len(rows) == intact_files
    print("OK: nothing lost, nothing extra" if ok else "FAILED: see the figures above")
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
