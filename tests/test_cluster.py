"""The scale-out topology, really run: ``manage.py cluster``'s processes on loopback
(PostgreSQL, Redis on TCP, nginx, two web servers, two training workers, a
background worker, shared media), checked from outside as a client and as staff.

One cluster for the module (it takes about half a minute to start); the tests
run in file order and each says what it leaves behind.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import time
from pathlib import Path

import pytest

from operations import cluster as topology
from operations.cluster import Cluster
from operations.services import free_port

from .conftest import data_url

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not list(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl")),
        reason="PostgreSQL's server is not installed (.ci/run installs it)",
    ),
]

CHECK_SECONDS = float(topology.shared_settings()["DIGITS_MODEL_CHECK_SECONDS"])
CONTRIBUTE_RATE = 40
TINY_RUN = {
    "architecture": "mlp", "epochs": 1, "limit": 2000, "use_pendigits": False,
    "use_drawings": False, "augment": False,
}  # fmt: skip


def call(port: int, method: str, path: str, body=None, headers=None, timeout: float = 30):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        payload = json.dumps(body).encode() if body is not None else None
        connection.request(
            method, path, payload, {"Content-Type": "application/json", **(headers or {})}
        )
        response = connection.getresponse()
        data = response.read()
    finally:
        connection.close()
    return response.status, (json.loads(data) if data[:1] in (b"{", b"[") else data)


@pytest.fixture(scope="module")
def running(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cluster")
    ports = [free_port() for _ in range(5)]
    cluster = Cluster(
        folder,
        port=ports[0],
        web_ports=(ports[1], ports[2]),
        postgres_port=ports[3],
        redis_port=ports[4],
        settings={
            "DIGITS_CONTRIBUTE_RATE": f"{CONTRIBUTE_RATE}/min",
            # Tiny test runs cannot match the bootstrap model: the gate rejects them,
            # so the serving version only changes when a test promotes one.
            "DIGITS_GATE_FLOORS": json.dumps({"default": 0.5}),
        },
    )
    cluster.start()
    try:
        token = cluster.manage(
            "shell", "-c",
            "from django.contrib.auth import get_user_model; "
            "from rest_framework.authtoken.models import Token; "
            "u = get_user_model().objects.create_superuser('admin', 'a@example.com', 'pw-for-tests'); "
            "print(Token.objects.create(user=u).key)",
        ).split()[-1]  # fmt: skip
        cluster.staff = {"Authorization": f"Token {token}"}
        yield cluster
    finally:
        cluster.stop(remove_database=True)


def png_data_url(label: int, index: int) -> str:
    from classifier import canvas
    from training.sources import pendigits as pen_source

    digits = [
        d for d in pen_source.load_pendigit_strokes()
        if d.writer in pen_source.PENDIGITS_TEST_WRITERS and d.label == label
    ]  # fmt: skip
    png = canvas.render_strokes(digits[index].strokes)
    return data_url(png)


def stats(port: int) -> dict:
    status, body = call(port, "GET", "/api/dataset/stats/")
    assert status == 200, body
    return body


def serving_version(port: int) -> int:
    status, body = call(port, "POST", "/api/predict/", {"image": png_data_url(3, 0)})
    assert status == 200, body
    return body["model_version"]


def test_a_contribution_through_nginx_lands_once_and_both_web_servers_agree(running):
    web1, web2 = running.web_ports
    before = stats(web1)["total"]
    files_before = drawing_files(running)
    image = png_data_url(7, 0)
    first = call(running.port, "POST", "/api/drawings/", {"image": image, "label": 7})
    again = call(running.port, "POST", "/api/drawings/", {"image": image, "label": 7})
    assert first[0] == 201 and again[0] == 200, (first, again)
    assert first[1]["id"] == again[1]["id"] and again[1]["duplicate"]
    assert stats(web1) == stats(web2) and stats(web1)["total"] == before + 1
    # its file is in the media every host shares, once
    assert len(drawing_files(running)) == len(files_before) + 1


def drawing_files(cluster) -> list[Path]:
    return [p for p in (cluster.media / "drawings").rglob("*.png")]


def wait_for_runs(cluster, ids: list[int], timeout: float = 240) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        runs = [call(cluster.port, "GET", f"/api/training-runs/{i}/", headers=cluster.staff)[1]
                for i in ids]  # fmt: skip
        if all(r["status"] in {"succeeded", "failed", "cancelled"} for r in runs):
            return runs
        assert time.monotonic() < deadline, [(r["id"], r["status"], r["phase"]) for r in runs]
        time.sleep(1)


def test_two_runs_at_once_are_trained_by_both_workers_in_parallel(running):
    started = [
        call(running.port, "POST", "/api/training-runs/", TINY_RUN, headers=running.staff)
        for _ in range(2)
    ]
    assert [s for s, _ in started] == [202, 202], started
    runs = wait_for_runs(running, [body["id"] for _, body in started])
    assert [r["status"] for r in runs] == ["succeeded", "succeeded"], [r["error"] for r in runs]
    # each claimed by one worker process, different ones, and their times overlap
    assert runs[0]["worker"] and runs[1]["worker"] and runs[0]["worker"] != runs[1]["worker"]
    assert max(r["started_at"] for r in runs) < min(r["finished_at"] for r in runs)
    logs = {
        name: (running.logs / name / "worker.log").read_text()
        for name in ("worker1", "worker2")
    }  # fmt: skip
    for run in runs:  # claimed once, by one worker
        claims = [n for n, text in logs.items() if f"Run {run['id']} claimed by" in text]
        assert (
            len(claims) == 1
            and sum(t.count(f"Run {run['id']} claimed") for t in logs.values()) == 1
        )
    assert {n for n, text in logs.items() if "claimed by" in text} == {"worker1", "worker2"}


def test_both_web_servers_follow_a_promotion_and_a_rollback(running):
    web1, web2 = running.web_ports
    old = serving_version(web1)
    new = int(
        running.manage(
            "shell", "-c",
            "from classifier.registry import BOOTSTRAP_DIR, register_directory; "
            "print(register_directory(BOOTSTRAP_DIR, activate=False, note='cluster').version)",
        ).split()[-1]
    )  # fmt: skip
    for target, reason in ((new, "promote"), (old, "roll back")):
        status, body = call(
            running.port, "POST", f"/api/models/{target}/promote/", {"reason": reason},
            headers=running.staff,
        )  # fmt: skip
        assert status == 200, body
        promoted_at = time.monotonic()
        # every answer after the check interval (plus a second to load it) is the new one
        time.sleep(CHECK_SECONDS + 1)
        answers = {port: {serving_version(port) for _ in range(8)} for port in (web1, web2)}
        assert answers == {web1: {target}, web2: {target}}, (reason, answers)
        assert time.monotonic() - promoted_at < CHECK_SECONDS + 10


def test_rate_limits_are_shared_by_both_web_servers(running):
    web1, web2 = running.web_ports
    # one client (believed from the trusted proxy's header), alternating servers
    client = {"X-Forwarded-For": "10.20.30.40"}
    answers = [
        call((web1, web2)[i % 2], "POST", "/api/drawings/", {}, headers=client)[0]
        for i in range(CONTRIBUTE_RATE + 4)
    ]
    assert answers[:CONTRIBUTE_RATE] == [400] * CONTRIBUTE_RATE, answers
    assert set(answers[CONTRIBUTE_RATE:]) == {429}, answers


def test_killing_a_web_server_mid_work_loses_nothing(running):
    import threading

    web2 = running.web_ports[1]
    images = [png_data_url(label, 1) for label in range(10)] + [
        png_data_url(label, 2) for label in range(10)
    ]
    before = stats(web2)["total"]
    reads: list[int] = []
    done = threading.Event()

    def keep_reading() -> None:  # another client's idempotent reads, all along
        while not done.is_set():
            reads.append(call(running.port, "GET", "/api/dataset/stats/")[0])

    reader = threading.Thread(target=keep_reading)
    reader.start()
    writes = []
    try:
        for i, image in enumerate(images):
            if i == 5:  # the machine behind web server 1 goes away, workers and all
                os.killpg(running.processes["web1"].pid, signal.SIGKILL)
            body = {"image": image, "label": i % 10}
            # No retry here: a drawing is stored by its content, so nginx sends this
            # POST to web server 2 even when web server 1 took it and died with it
            writes.append(call(running.port, "POST", "/api/drawings/", body)[0])
    finally:
        done.set()
        reader.join()
    # every read and write was answered (nginx resent them to web server 2), every
    # drawing stored once
    assert len(reads) > 20 and set(reads) == {200}, reads
    assert set(writes) <= {200, 201}, writes
    assert stats(web2)["total"] == before + len(images)


def test_killing_a_worker_mid_run_fails_the_run_with_a_reason_and_it_runs_again(running):
    long_run = {**TINY_RUN, "epochs": 40, "limit": 6000}
    status, run = call(running.port, "POST", "/api/training-runs/", long_run, headers=running.staff)
    assert status == 202, run
    deadline = time.monotonic() + 120
    while True:  # until it is training
        run = call(running.port, "GET", f"/api/training-runs/{run['id']}/", headers=running.staff)[
            1
        ]
        if run["status"] == "running" and run["epoch"] >= 1:
            break
        assert run["status"] in {"queued", "running"} and time.monotonic() < deadline, run
        time.sleep(0.5)
    # the process training it dies (its host's worker, as an out-of-memory kill would)
    os.kill(int(run["worker"].rsplit(":", 1)[1]), signal.SIGKILL)
    deadline = time.monotonic() + 60
    while True:
        run = call(running.port, "GET", f"/api/training-runs/{run['id']}/", headers=running.staff)[
            1
        ]
        if run["status"] == "failed":
            break
        assert time.monotonic() < deadline, run
        time.sleep(0.5)
    assert "worker" in run["error"].lower() or "died" in run["error"].lower(), run["error"]
    # staff start it again with the same settings, and a worker trains it to the end
    status, again = call(
        running.port, "POST", f"/api/training-runs/{run['id']}/again/", headers=running.staff
    )
    assert status == 202 and again["epochs"] == 40 and again["limit"] == 6000, again
    runs = wait_for_runs(running, [again["id"]], timeout=400)
    assert runs[0]["status"] == "succeeded", runs[0]["error"]
