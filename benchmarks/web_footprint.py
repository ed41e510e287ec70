"""A web process' footprint: resident memory after its first answer, and the time
from process start to that answer.

    .venv/bin/python benchmarks/web_footprint.py

Starts a fresh Python process that does what a gunicorn worker does (Django
setup, load the active model on the first request, answer it), and compares
with the usual approach (import TensorFlow, load the Keras model, predict).
Targets: ≤ 200 MB resident and ≤ 1.5 s to the first answer.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

import _django  # noqa: F401
from _server import ROOT, canvas_bodies

OURS = r"""
import time, sys, json, os
started = float(sys.argv[1])
import django
django.setup()
from django.test import Client
body = open(sys.argv[2], "rb").read()
response = Client(HTTP_HOST="127.0.0.1").post("/api/predict/", body, content_type="application/json")
assert response.status_code == 200, response.content
first = time.time() - started
rss = int(next(l for l in open("/proc/self/status") if l.startswith("VmRSS")).split()[1]) / 1024
print(json.dumps({"first_answer_s": first, "rss_mb": rss,
                  "tensorflow_imported": "tensorflow" in sys.modules}))
"""

BASELINE = r"""
import time, sys, json
started = float(sys.argv[1])
import keras, numpy as np
from classifier import preprocessing
from digits_site.bodies import decode_data_url
model = keras.saving.load_model(sys.argv[3])
body = json.loads(open(sys.argv[2], "rb").read())
x = preprocessing.to_model_input(decode_data_url(body["image"], preprocessing.MAX_IMAGE_BYTES))
model.predict(x[None, :, :, None], verbose=0)
first = time.time() - started
rss = int(next(l for l in open("/proc/self/status") if l.startswith("VmRSS")).split()[1]) / 1024
print(json.dumps({"first_answer_s": first, "rss_mb": rss, "tensorflow_imported": True}))
"""


def run(script: str, env: dict, *args: str) -> dict:
    import time

    done = subprocess.run(
        [sys.executable, "-c", script, str(time.time()), *args],
        cwd=ROOT, env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    from classifier.registry import BOOTSTRAP_DIR

    body = canvas_bodies(1)[0]
    with tempfile.TemporaryDirectory() as data_dir:
        env = {**os.environ, "DIGITS_DATA_DIR": data_dir, "DJANGO_SETTINGS_MODULE": "digits_site.settings",
               "TF_CPP_MIN_LOG_LEVEL": "3"}  # fmt: skip
        for command in (["migrate", "-v0"], ["ensure_model"]):
            subprocess.run([sys.executable, "manage.py", *command], cwd=ROOT, env=env, check=True,
                           capture_output=True)  # fmt: skip
        request = os.path.join(data_dir, "request.json")
        with open(request, "wb") as handle:
            handle.write(body)
        ours = [run(OURS, env, request) for _ in range(3)]
        theirs = run(BASELINE, env, request, str(BOOTSTRAP_DIR / "model.keras"))
    best = min(ours, key=lambda r: r["first_answer_s"])
    print("process start → first prediction answered (best of 3), resident memory after it")
    print(f"ours (Django + LiteRT):        {best['first_answer_s']:.2f} s   {best['rss_mb']:.0f} MB   "
          f"TensorFlow imported: {best['tensorflow_imported']}")  # fmt: skip
    print(
        f"usual (TensorFlow + Keras):    {theirs['first_answer_s']:.2f} s   {theirs['rss_mb']:.0f} MB"
    )


if __name__ == "__main__":
    main()
