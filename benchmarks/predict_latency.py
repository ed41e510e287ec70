"""End-to-end prediction latency: our app against the usual approach, side by side.

    .venv/bin/python benchmarks/predict_latency.py [--requests 500]

Ours: ``POST /api/predict/`` against the app started as ``make run`` starts it
(gunicorn, LiteRT, no TensorFlow in the web process). The baseline: a view in
this process that does what the usual approach does (TensorFlow loaded, the
Keras model with the same weights, ``model.predict`` per request), with the
same decoding and preprocessing, served over HTTP on loopback too. The same
client sends the same real canvas PNGs to both, one request at a time.
Ours is measured twice: the picture alone, and the picture with the strokes the
page recorded (as every live prediction sends them: parsed, checked against the
picture, and read by the pen view when the version has one).
Target: our p50 ≤ 2.5 ms with strokes, and at least 10× faster than the baseline.
"""

from __future__ import annotations

import argparse
import http.client
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import _django  # noqa: F401
from _server import canvas_bodies, percentile, running_app


def measure(host: str, port: int, bodies: list[bytes], n: int) -> list[float]:
    connection = http.client.HTTPConnection(host, port, timeout=30)
    timings = []
    for i in range(n + 20):
        body = bodies[i % len(bodies)]
        started = time.perf_counter()
        connection.request("POST", "/api/predict/", body, {"Content-Type": "application/json"})
        response = connection.getresponse()
        payload = response.read()
        elapsed = time.perf_counter() - started
        if response.status != 200:
            raise RuntimeError(f"{response.status}: {payload[:200]!r}")
        if i >= 20:  # warm-up excluded
            timings.append(elapsed * 1000)
    return timings


def baseline_server():
    """The usual approach: Keras model in the web process, model.predict per request."""
    import keras
    import numpy as np

    from classifier import preprocessing
    from classifier.registry import BOOTSTRAP_DIR
    from digits_site.bodies import decode_data_url

    model = keras.saving.load_model(BOOTSTRAP_DIR / "model.keras")

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            x = preprocessing.to_model_input(
                decode_data_url(body["image"], preprocessing.MAX_IMAGE_BYTES)
            )
            probabilities = model.predict(x[None, :, :, None], verbose=0)[0]
            out = json.dumps({"digit": int(np.argmax(probabilities))}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def report(name: str, timings: list[float]) -> float:
    p50, p95 = percentile(timings, 50), percentile(timings, 95)
    print(f"{name:<34} p50 {p50:7.2f} ms   p95 {p95:7.2f} ms   (n={len(timings)})")
    return p50


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=500)
    args = parser.parse_args()
    bodies = canvas_bodies()
    with_strokes = canvas_bodies(strokes=True)
    with running_app() as (host, port):
        ours = measure(host, port, bodies, args.requests)
        both = measure(host, port, with_strokes, args.requests)
    baseline = baseline_server()
    theirs = measure("127.0.0.1", baseline.server_address[1], bodies, args.requests)
    baseline.shutdown()
    print("POST /api/predict/ with a real 256×256 canvas PNG, one client, loopback")
    p50_ours = report("ours (gunicorn + LiteRT)", ours)
    report("ours, PNG and its strokes (both views)", both)
    p50_theirs = report("baseline (TensorFlow model.predict)", theirs)
    print(f"ratio (baseline p50 / ours p50): {p50_theirs / p50_ours:.1f}×")


if __name__ == "__main__":
    main()
