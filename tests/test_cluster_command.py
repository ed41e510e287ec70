"""``manage.py cluster`` as a person runs it: it prints the address, serves through
nginx, and Ctrl-C stops every process it started (the topology itself is checked
in tests/test_cluster.py)."""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from operations.services import free_port

ROOT = Path(__file__).resolve().parent.parent
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not list(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl")),
        reason="PostgreSQL's server is not installed (.ci/run installs it)",
    ),
]


def children_of(pid: int) -> set[int]:
    """Every process descended from ``pid`` (from /proc)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def test_the_cluster_command_serves_and_ctrl_c_stops_it_all(tmp_path):
    ports = [free_port() for _ in range(5)]
    command = [
        sys.executable, str(ROOT / "manage.py"), "cluster", "--dir", str(tmp_path / "c"),
        "--port", str(ports[0]), "--web-ports", f"{ports[1]},{ports[2]}",
        "--postgres-port", str(ports[3]), "--redis-port", str(ports[4]),
    ]  # fmt: skip
    env = {**os.environ, "DIGITS_DATA_DIR": str(tmp_path / "admin-host")}
    env.pop("DATABASE_URL", None)
    process = subprocess.Popen(
        command, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        lines = []
        deadline = time.monotonic() + 180
        while not any("is running at" in line for line in lines):
            line = process.stdout.readline()
            assert line or process.poll() is None, "".join(lines)
            lines.append(line)
            assert time.monotonic() < deadline, "".join(lines)
        assert f"http://127.0.0.1:{ports[0]}/" in "".join(lines)
        started = children_of(process.pid)
        assert len(started) >= 6  # redis, 2 web servers (and their workers), 3 workers, nginx
        connection = http.client.HTTPConnection("127.0.0.1", ports[0], timeout=30)
        connection.request("GET", "/api/dataset/stats/")
        assert connection.getresponse().status == 200
        connection.close()
        # when a person presses Ctrl-C
        process.send_signal(signal.SIGINT)
        out, _ = process.communicate(timeout=120)
        assert process.returncode == 0, out
        assert "Stopped." in out
        # then nothing it started is left, and the database server is down
        time.sleep(0.5)
        alive = [pid for pid in started if Path(f"/proc/{pid}").exists()]
        assert not alive, alive
        postgres = subprocess.run(
            ["pg_isready", "-h", "127.0.0.1", "-p", str(ports[3])], capture_output=True
        )
        assert postgres.returncode != 0
    finally:
        if process.poll() is None:
            process.kill()
        subprocess.run(
            [str(ROOT / "deploy/postgres.sh"), "remove", str(tmp_path / "c" / "postgres")],
            capture_output=True,
        )
