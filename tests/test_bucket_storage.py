"""``DIGITS_STORAGE=s3``: drawings, model artifacts, backups' files and exports in an
S3-compatible bucket, for hosts that share no disk.

The server is moto's (``moto_server``, from PyPI): a real HTTP server speaking the
S3 API on loopback, so boto3 and django-storages do everything they would do
against a cloud bucket. What it cannot show (a cloud's latency, its consistency
under load, IAM policies) is said in the README.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from operations.services import free_port

from .conftest import instance_env

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.integration
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "digits-test",
    "AWS_SECRET_ACCESS_KEY": "digits-test-secret",
    "DIGITS_S3_REGION": "us-east-1",
}


@pytest.fixture(scope="module")
def s3_server(tmp_path_factory):
    binary = shutil.which("moto_server") or str(Path(sys.executable).with_name("moto_server"))
    port = free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    process = subprocess.Popen(
        [binary, "-H", "127.0.0.1", "-p", str(port)],
        stdout=log.open("wb"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    import boto3

    client = boto3.client(
        "s3", endpoint_url=url, region_name="us-east-1",
        aws_access_key_id="digits-test", aws_secret_access_key="digits-test-secret",
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while True:
        try:
            client.list_buckets()
            break
        except Exception:
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "moto_server did not start"
            time.sleep(0.2)
    try:
        yield url, client
    finally:
        process.terminate()
        process.wait(10)


def keys(client, bucket: str, prefix: str = "") -> list[str]:
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return sorted(item["Key"] for page in pages for item in page.get("Contents", []))


def manage(env: dict, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return done.stdout


WORK = r"""
import base64, json
from django.test import Client
from classifier.canvas import render_strokes
from collector import dataset
from collector.models import Drawing
from training.sources.pendigits import load_pendigit_strokes, PENDIGITS_TEST_WRITERS
unseen = [d for d in load_pendigit_strokes() if d.writer in PENDIGITS_TEST_WRITERS]
sevens = [d for d in unseen if d.label == 7][:3]
client = Client(HTTP_HOST="127.0.0.1")
answers = []
for d in sevens:
    image = "data:image/png;base64," + base64.b64encode(render_strokes(d.strokes)).decode()
    answer = client.post("/api/drawings/", json.dumps({"image": image, "label": 7}),
                         content_type="application/json")
    answers.append(answer.status_code)
predicted = client.post("/api/predict/", json.dumps({"image": image}),
                        content_type="application/json").json()
inputs = [dataset.read_model_input(d) for d in Drawing.objects.all()]
print(json.dumps({"answers": answers, "predicted": predicted["digit"],
                  "version": predicted["model_version"],
                  "inputs": [None if x is None else list(x.shape) for x in inputs],
                  "drawings": sorted([d.sha256, d.split] for d in Drawing.objects.all())}))
"""


def test_an_instance_on_a_bucket_keeps_every_file_there(s3_server, tmp_path):
    url, client = s3_server
    bucket = f"digits-{uuid.uuid4().hex[:10]}"
    client.create_bucket(Bucket=bucket)
    env = instance_env(
        tmp_path / "host",
        DIGITS_STORAGE="s3", DIGITS_S3_BUCKET=bucket, DIGITS_S3_ENDPOINT_URL=url, **CREDENTIALS,
    )  # fmt: skip
    # given a fresh instance whose files go to the bucket
    manage(env, "migrate", "--noinput", "-v0")
    manage(env, "ensure_model")
    # when people contribute, the model predicts, and training reads the drawings
    result = json.loads(manage(env, "shell", "-c", WORK).splitlines()[-1])
    assert result["answers"] == [201, 201, 201]
    assert result["predicted"] == 7 and result["version"] == 1
    assert result["inputs"] == [[28, 28]] * 3
    # then the drawings and the model version are objects in the bucket, and the
    # host's own folder holds none of them
    stored = keys(client, bucket)
    assert sum(k.startswith("drawings/") for k in stored) == 3
    assert "models/v0001/model.tflite" in stored and "models/v0001/model.keras" in stored
    local = tmp_path / "host" / "media"
    assert not local.exists() or not [p for p in local.rglob("*") if p.is_file()]
    # the integrity check reads the bucket: nothing missing, nothing damaged
    report = manage(env, "check_storage")
    assert "missing" not in report and "damaged" not in report, report
    # a backup taken from the bucket restores into another instance on another prefix
    manage(env, "backup", str(tmp_path / "b.zip"))
    other = instance_env(
        tmp_path / "other-host", DIGITS_STORAGE="s3", DIGITS_S3_BUCKET=bucket,
        DIGITS_S3_ENDPOINT_URL=url, DIGITS_S3_PREFIX="restored", **CREDENTIALS,
    )  # fmt: skip
    manage(other, "restore", str(tmp_path / "b.zip"))
    again = json.loads(manage(other, "shell", "-c", WORK).splitlines()[-1])
    assert again["drawings"] == result["drawings"] and again["answers"] == [200, 200, 200]
    assert sum(k.startswith("restored/drawings/") for k in keys(client, bucket)) == 3


def test_a_bucket_without_a_name_is_refused_at_start(tmp_path):
    env = instance_env(tmp_path, DIGITS_STORAGE="s3")
    done = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "check"],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode != 0 and "DIGITS_S3_BUCKET" in done.stderr
    env = instance_env(tmp_path, DIGITS_STORAGE="ftp")
    done = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "check"],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode != 0 and "DIGITS_STORAGE must be local or s3" in done.stderr
