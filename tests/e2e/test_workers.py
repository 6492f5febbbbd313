"""``pylotto run --workers N``: several processes serve one sidecar's ports."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

from pylotto.proto.layotto import runtime_pb2
from tests.e2e.sidecar import Sidecar
from tests.support.servers import require


def _pid_behind(url: str) -> int:
    """The pid of the worker that answers a new connection to the actuator."""
    with urllib.request.urlopen(f"{url}/actuator/info", timeout=5) as resp:
        return int(json.load(resp)["app"]["pid"])


def _children(parent: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == parent:
                found.add(int(entry.name))
    return found


def test_two_workers_share_the_ports_serve_every_call_and_stop_together(
        tmp_path: Path) -> None:
    require("redis")
    prefix = f"workers-{uuid.uuid4().hex[:8]}"
    car = Sidecar(tmp_path, components={"state": {"cache": {
        "type": "redis", "metadata": {"redisHost": "127.0.0.1:6379"}}}},
        extra_args=["--workers", "2"])
    car.start()
    try:
        assert car.process is not None
        deadline = time.monotonic() + 30
        pids: set[int] = set()
        while len(pids) < 2 and time.monotonic() < deadline:  # a worker may still be starting
            pids |= {_pid_behind(car.actuator_url) for _ in range(20)}
        workers = pids
        assert len(workers) == 2 and workers <= _children(car.process.pid)

        # every call succeeds, whichever worker a connection lands on; they share Redis
        for n in range(20):
            stub = car.stub()
            key = f"{prefix}-{n}"
            stub.SaveState(runtime_pb2.SaveStateRequest(store_name="cache", states=[
                runtime_pb2.StateItem(key=key, value=b"v%d" % n)]))
            got = stub.GetState(runtime_pb2.GetStateRequest(store_name="cache", key=key))
            assert got.data == b"v%d" % n

        assert car.stop(signal.SIGTERM) == 0
        for pid in workers:
            assert not Path(f"/proc/{pid}").exists() or \
                "Z" in Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    finally:
        if car.process is not None and car.process.poll() is None:
            car.stop(signal.SIGKILL)


def test_a_worker_that_dies_stops_the_sidecar(tmp_path: Path) -> None:
    require("redis")
    car = Sidecar(tmp_path, components={"state": {"cache": {
        "type": "redis", "metadata": {"redisHost": "127.0.0.1:6379"}}}},
        extra_args=["--workers", "2"])
    car.start()
    assert car.process is not None
    deadline = time.monotonic() + 30
    pids: set[int] = set()
    while len(pids) < 2 and time.monotonic() < deadline:
        pids |= {_pid_behind(car.actuator_url) for _ in range(20)}
    victim = min(pids)
    os.kill(victim, signal.SIGKILL)
    assert car.process.wait(timeout=40) != 0  # the others were stopped, the failure reported
    assert "ended" in car.logs()


def test_process_local_components_of_a_file_are_refused_with_workers(tmp_path: Path) -> None:
    """The embedded default is made shareable (test_workers_embedded.py); a file asking for
    in-memory components gets them refused, by name."""
    config = tmp_path / "pylotto.yaml"
    config.write_text("components:\n  state:\n    cache:\n      type: in-memory\n"
                      "  lock:\n    shared:\n      type: sqlite\n")
    done = subprocess.run(
        [sys.executable, "-m", "pylotto", "run", "--workers", "2", "--config", str(config),
         "--data-dir", str(tmp_path)], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    assert "--workers needs components whose data lives in a shared backend" in done.stderr
    assert "state.cache (in-memory)" in done.stderr
    assert "lock.shared" not in done.stderr
