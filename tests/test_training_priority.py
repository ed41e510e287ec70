"""Training yields the CPU to serving (``training.priority``).

Each case runs in its own Python process: lowering a priority cannot be undone
without privileges, and the test must not slow the rest of the suite.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

PROBE = """
import json, os, threading, subprocess, sys
import django
django.setup()
from training import priority

before = sorted(os.sched_getaffinity(0))
started = threading.Event()
stop = threading.Event()
def earlier():  # a thread that exists before lower(), as Celery's do
    started.set()
    stop.wait()
thread = threading.Thread(target=earlier, daemon=True)
thread.start()
started.wait()
policy = priority.lower()
child = subprocess.run(
    [sys.executable, "-c", "import os, json; print(json.dumps([os.sched_getscheduler(0), "
     "sorted(os.sched_getaffinity(0))]))"],
    capture_output=True, text=True, check=True,
)
threads = [int(t) for t in os.listdir("/proc/self/task")]
print(json.dumps({
    "policy": policy,
    "schedulers": [os.sched_getscheduler(t) for t in threads],
    "masks": [sorted(os.sched_getaffinity(t)) for t in threads],
    "nices": [os.getpriority(os.PRIO_PROCESS, t) for t in threads],
    "child": json.loads(child.stdout),
    "before": before,
}))
stop.set()
"""

pytestmark = pytest.mark.skipif(
    not hasattr(os, "SCHED_IDLE"), reason="SCHED_IDLE and CPU masks are Linux's"
)


def lowered(**env: str) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "digits_site.settings", **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


CPUS = sorted(os.sched_getaffinity(0))  # whether two exist; masks compare to "before"


def test_idle_priority_reaches_every_thread_and_every_child():
    state = lowered(DIGITS_TRAINING_PRIORITY="idle")
    assert state["policy"] == "idle"
    assert set(state["schedulers"]) == {os.SCHED_IDLE}, "a thread kept its normal priority"
    assert state["child"][0] == os.SCHED_IDLE, "a rendering process would compete with serving"


@pytest.mark.skipif(len(CPUS) < 2, reason="needs two CPUs to leave one to serving")
def test_a_run_leaves_a_cpu_to_serving():
    state = lowered(DIGITS_TRAINING_PRIORITY="idle", DIGITS_TRAINING_SPARE_CPUS="1")
    expected = state["before"][1:]
    assert all(mask == expected for mask in state["masks"]), state["masks"]
    assert state["child"][1] == expected


def test_spare_cpus_zero_uses_them_all_and_never_leaves_training_none():
    state = lowered(DIGITS_TRAINING_SPARE_CPUS="0")
    assert all(m == state["before"] for m in state["masks"])
    state = lowered(DIGITS_TRAINING_SPARE_CPUS=str(len(CPUS)))
    assert all(m == state["before"] for m in state["masks"]), "training must keep a CPU"


def test_nice_priority():
    state = lowered(DIGITS_TRAINING_PRIORITY="nice")
    assert state["policy"] == "nice"
    assert set(state["schedulers"]) == {os.SCHED_OTHER}
    assert set(state["nices"]) == {19}


def test_normal_priority_changes_nothing():
    state = lowered(DIGITS_TRAINING_PRIORITY="normal")
    assert state["policy"] == "normal"
    assert set(state["schedulers"]) == {os.SCHED_OTHER}
    assert all(mask == state["before"] for mask in state["masks"])
