"""``make run`` survives its children: a dead Redis, worker or web server is started
again with a back-off while the rest go on serving, and a run left by a dead
worker is failed at once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from operations import services

from .conftest import data_url, instance_env, wait_for
from .test_public_edge import call

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


class FakeProcess:
    def __init__(self):
        self.code = None

    def poll(self):
        return self.code


def test_a_dead_child_comes_back_after_a_growing_back_off():
    # given a supervised child that keeps dying soon after it starts
    started, said, deaths = [], [], []
    supervisor = services.Supervisor(log=said.append, on_death=deaths.append)
    supervisor.add("redis", lambda: started.append(FakeProcess()) or started[-1])
    clock = 1000.0
    for expected_delay in (1, 2, 5, 10, 30, 30):
        started[-1].code = -9  # killed
        supervisor.check(clock)
        assert said[-1] == f"The redis stopped (exit -9); starting it again in {expected_delay} s."
        supervisor.check(clock + expected_delay - 0.1)  # not yet
        count = len(started)
        supervisor.check(clock + expected_delay)
        assert len(started) == count + 1  # started again, on time
        clock += expected_delay + 1
    assert deaths == ["redis"] * 6
    # and once it stays up for a minute, its next death is forgiven: 1 s again
    clock += services.Supervisor.STEADY_SECONDS
    started[-1].code = 1
    supervisor.check(clock)
    assert said[-1].endswith("again in 1 s.")


def children(pid: int) -> dict[str, int]:
    """The serve command's children by what they are."""
    found = {}
    listing = subprocess.run(["ps", "-ww", "-o", "pid=,args=", "--ppid", str(pid)],
                             capture_output=True, text=True).stdout  # fmt: skip
    for line in listing.strip().splitlines():
        child, command = line.strip().split(" ", 1)
        if "redis-server" in command:
            found["redis"] = int(child)
        elif "--queues training" in command:
            found["worker"] = int(child)
        elif "--queues background" in command:
            found["background worker"] = int(child)
        elif "gunicorn" in command:
            found["web server"] = int(child)
    return found


def all_four(found: dict[str, int]) -> dict[str, int] | None:
    return found if len(found) == 4 else None


def answered(port: int) -> bool:
    try:
        return call(port, "GET", "/api/dataset/stats/", timeout=2)[0] == 200
    except OSError:
        return False


def shell(env: dict, code: str) -> str:
    done = subprocess.run([sys.executable, str(ROOT / "manage.py"), "shell", "-v", "0", "-c", code],
                          env=env, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_serve_restarts_each_child_and_keeps_serving(tmp_path, canvas_png):
    # given `make run`'s serve command, with its workers
    env = instance_env(tmp_path / "data", DIGITS_RUN_WORKER="1")
    manage = [sys.executable, str(ROOT / "manage.py")]
    for command in (["migrate", "-v0"], ["ensure_model"]):
        subprocess.run(manage + command, env=env, check=True, capture_output=True)
    port = services.free_port()
    log = tmp_path / "serve.log"
    with open(log, "wb") as stderr:
        serve = subprocess.Popen([*manage, "serve", "--port", str(port), "--workers", "2"],
                                 env=env, stdout=subprocess.DEVNULL, stderr=stderr)  # fmt: skip
    body = {"image": data_url(canvas_png(3))}
    try:
        wait_for(lambda: answered(port), 90, "the site")
        first = wait_for(lambda: all_four(children(serve.pid)), 60, "its four children")

        # when Redis is killed, predictions go on, and Redis comes back
        os.kill(first["redis"], signal.SIGKILL)
        assert call(port, "POST", "/api/predict/", body)[0] == 200
        wait_for(lambda: children(serve.pid).get("redis", first["redis"]) != first["redis"], 30,
                 "Redis to be started again")  # fmt: skip

        # when the training worker's main process dies with a run of its own running,
        # the run is failed at once and a new worker starts
        worker = first["worker"]
        run_id = shell(env, (
            "import socket; from training.models import TrainingRun; "
            f"print(TrainingRun.objects.create(status='running', worker=f'{{socket.gethostname()}}:{worker}').pk)"
        ))  # fmt: skip
        os.kill(worker, signal.SIGKILL)
        wait_for(lambda: children(serve.pid).get("worker", worker) != worker, 30, "a new worker")
        status = shell(env, f"from training.models import TrainingRun; "
                            f"print(TrainingRun.objects.get(pk={run_id}).status)")  # fmt: skip
        assert status == "failed"

        # when the web server itself is killed, it is started again and answers
        os.kill(first["web server"], signal.SIGKILL)
        wait_for(lambda: children(serve.pid).get("web server", first["web server"])
                 != first["web server"], 30, "a new web server")  # fmt: skip
        wait_for(lambda: answered(port), 60, "the site again")
        assert call(port, "POST", "/api/predict/", body)[0] == 200
        assert serve.poll() is None
    finally:
        serve.send_signal(signal.SIGINT)
        serve.wait(timeout=60)
    said = log.read_text()
    assert "The redis stopped" in said and "The worker stopped" in said, said
    assert "Marked 1 run(s) of the dead worker failed." in said
    # and Ctrl-C stopped every child
    time.sleep(1)
    assert children(serve.pid) == {}


def test_ctrl_c_stops_make_run_quietly(tmp_path):
    """A terminal's Ctrl-C reaches every process of ``make run`` (its process group):
    each stops in order and the terminal reads "Stopping…", "Stopped." and nothing
    else (no gevent ``SystemExit`` traceback per web worker, no Celery chatter)."""
    env = instance_env(tmp_path / "data", DIGITS_RUN_WORKER="1")
    manage = [sys.executable, str(ROOT / "manage.py")]
    for command in (["migrate", "-v0"], ["ensure_model"]):
        subprocess.run(manage + command, env=env, check=True, capture_output=True)
    port = services.free_port()
    serve = subprocess.Popen([*manage, "serve", "--port", str(port), "--workers", "2"], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             start_new_session=True)  # fmt: skip
    try:
        wait_for(lambda: answered(port), 90, "the site")
        wait_for(lambda: all_four(children(serve.pid)), 60, "its four children")
        time.sleep(2)  # every web worker up and idle
    finally:
        os.killpg(serve.pid, signal.SIGINT)
        said = serve.communicate(timeout=60)[0].decode()
    assert serve.returncode == 0, said
    assert said.rstrip().endswith("Stopping…\nStopped."), said
    for noise in ("Traceback", "SystemExit", "Warm shutdown", "Hitting Ctrl+C"):
        assert noise not in said, said
    time.sleep(1)
    assert children(serve.pid) == {}
