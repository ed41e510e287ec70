"""The web process answers predictions without ever importing TensorFlow."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from .conftest import instance_env

ROOT = Path(__file__).resolve().parent.parent

SCRIPT = r"""
import base64, json, sys
import django
django.setup()
from django.core.management import call_command
from django.test import Client
from classifier.canvas import render_strokes
from training.sources.pendigits import load_pendigit_strokes, PENDIGITS_TEST_WRITERS
call_command("migrate", verbosity=0)
call_command("ensure_model", verbosity=0)
unseen = [d for d in load_pendigit_strokes() if d.writer in PENDIGITS_TEST_WRITERS]
digit = next(d for d in unseen if d.label == 6)
image = "data:image/png;base64," + base64.b64encode(render_strokes(digit.strokes)).decode()
response = Client(HTTP_HOST="127.0.0.1").post(
    "/api/predict/", json.dumps({"image": image}), content_type="application/json"
)
heavy = sorted(m for m in sys.modules if m.split(".")[0] in {"tensorflow", "keras"})
answer = response.json()
print(json.dumps({"status": response.status_code, "digit": answer.get("digit"), "tf": heavy}))
"""


def test_a_prediction_never_imports_tensorflow(tmp_path):
    env = instance_env(tmp_path, DJANGO_SETTINGS_MODULE="digits_site.settings")
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    import json

    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["status"] == 200 and result["digit"] == 6
    assert result["tf"] == []
