"""``pylotto run ... -- <app command>``: the app starts once the sidecar is ready, knows where
it is from its environment, and both stop together."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.e2e.sidecar import free_port

APP = """
import json, os, sys
from dapr.clients import DaprClient
with DaprClient() as client:
    client.save_state("in-memory", "from-app", "hello")
    value = client.get_state("in-memory", "from-app").data.decode()
print(json.dumps({"app_id": os.environ["APP_ID"], "value": value,
                  "layotto": os.environ["PYLOTTO_GRPC_ADDRESS"]}), flush=True)
sys.exit(3)
"""

WAITER = """
import pathlib, signal, sys, time
marker = pathlib.Path(sys.argv[1])
def stop(signum, frame):
    marker.write_text("terminated")
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
marker.write_text("started")
while True:
    time.sleep(0.1)
"""


def command(tmp_path: Path, *app: str) -> list[str]:
    return [sys.executable, "-m", "pylotto", "run", "--app-id", "launched",
            "--grpc-address", f"127.0.0.1:{free_port()}",
            "--actuator-address", f"127.0.0.1:{free_port()}",
            "--dapr-grpc-port", str(free_port()), "--dapr-http-port", str(free_port()),
            "--data-dir", str(tmp_path / "data"), "--", *app]


def test_the_app_talks_to_its_sidecar_and_its_failure_is_exit_code_1(tmp_path: Path) -> None:
    """As the Dapr CLI: an app exiting non-zero by itself makes the run exit 1 (the app's own
    code is logged)."""
    result = subprocess.run(command(tmp_path, sys.executable, "-c", APP),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1, result.stderr
    line = next(x for x in result.stdout.splitlines() if x.startswith("{"))
    assert '"app_id": "launched"' in line and '"value": "hello"' in line
    assert "the app exited with code 3" in result.stderr
    assert "The App process exited with error code: 3" in result.stderr


def test_sigterm_reaches_the_app_and_stops_both(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    proc = subprocess.Popen(command(tmp_path, sys.executable, "-c", WAITER, str(marker)),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while not marker.exists():
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=30)
    assert marker.read_text() == "terminated"
    assert proc.returncode == 0, stderr
    assert "pylotto stopped" in stderr


def test_a_command_that_does_not_exist_fails_clearly(tmp_path: Path) -> None:
    result = subprocess.run(command(tmp_path, "no-such-program-xyz"),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 127  # as a shell's "command not found"
    assert "cannot start the app: no-such-program-xyz: command not found" in result.stderr
