"""What a contribution costs the web process: ``POST /api/drawings/`` through
Django's test client (no network), one client adding real pen digits with every
check on (near-duplicates against its own drawings, quotas in the insert).

    .venv/bin/python benchmarks/contribute_latency.py [--drawings 150]

A fresh SQLite database in a temporary data folder; rate limits lifted, the
daily quota and pending cap left as they are (far above this).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import tempfile
import time

os.environ["DIGITS_DATA_DIR"] = tempfile.mkdtemp()
os.environ["DIGITS_CONTRIBUTE_RATE"] = "100000000/min"
os.environ["DIGITS_PREDICT_RATE"] = "100000000/min"

import _django  # noqa: F401
from _server import percentile


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--drawings", type=int, default=150)
    args = parser.parse_args()

    from django.core.management import call_command
    from django.test import Client

    from classifier import canvas
    from training.sources import pendigits as pen

    call_command("migrate", verbosity=0)
    call_command("ensure_model", verbosity=0)
    warm_up = 20
    digits = pen.load_pendigit_strokes()[: args.drawings + warm_up]
    client = Client(HTTP_HOST="127.0.0.1")
    timings = []
    for i, digit in enumerate(digits):
        png = canvas.render_strokes(digit.strokes)
        body = json.dumps({"image": "data:image/png;base64," + base64.b64encode(png).decode(),
                           "label": digit.label})  # fmt: skip
        started = time.perf_counter()
        response = client.post("/api/drawings/", body, content_type="application/json")
        if i >= warm_up:
            timings.append((time.perf_counter() - started) * 1000)
        assert response.status_code in (200, 201), response.content
    print(f"contribution: p50 {percentile(timings, 50):.1f} ms  p95 {percentile(timings, 95):.1f} ms"
          f"  (n={len(timings)}, one client)")  # fmt: skip


if __name__ == "__main__":
    main()
