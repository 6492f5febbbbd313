"""Running ``pylotto run`` as a test does it: a run in a subprocess, its output in a file, and
the CLI and HTTP calls the ``pylotto run`` tests make."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

APP = Path(__file__).parent / "apps" / "dapr_cli_app.py"
GRPC_APP = Path(__file__).parent / "apps" / "dapr_grpc_app.py"
WAIT_SECONDS = 40.0


def unique(name: str) -> str:
    """An app id no other test run on this machine uses (mDNS sees every local sidecar)."""
    return f"{name}-{uuid.uuid4().hex[:8]}"


@dataclass
class Run:
    """One ``pylotto run`` subprocess, its output in a file."""

    workdir: Path
    args: list[str]
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    @property
    def log(self) -> Path:
        return self.workdir / "run.log"

    @property
    def state(self) -> Path:
        return self.workdir / "state"

    def start(self) -> Run:
        self.workdir.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "pylotto", *self.args], stdout=out,
                stderr=subprocess.STDOUT, cwd=self.workdir,
                env={**os.environ, "PYTHONUNBUFFERED": "1", "STATE_DIR": str(self.state),
                     **self.env})
        return self

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def wait_for(self, text: str, timeout: float = WAIT_SECONDS) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.output():
            assert self.process is not None
            if self.process.poll() is not None and text not in self.output():
                raise AssertionError(f"exited {self.process.returncode} before {text!r}:\n"
                                     f"{self.output()}")
            assert time.monotonic() < deadline, f"no {text!r} in:\n{self.output()}"
            time.sleep(0.05)

    def app_env(self) -> dict[str, str]:
        self.wait_for("APP-READY")
        loaded: dict[str, str] = json.loads((self.state / "env.json").read_text())
        return loaded

    def signal(self, sig: signal.Signals) -> int:
        assert self.process is not None
        self.process.send_signal(sig)
        return self.wait()

    def wait(self, timeout: float = WAIT_SECONDS) -> int:
        assert self.process is not None
        return self.process.wait(timeout)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def pylotto_run(runs: list[Run], workdir: Path, *flags: str, app: bool = True,
                env: dict[str, str] | None = None) -> Run:
    """``pylotto run <flags> -- python dapr_cli_app.py`` (the data dir private)."""
    command = ["--", sys.executable, str(APP)] if app else []
    run = Run(workdir, ["run", "--data-dir", str(workdir / "data"), *flags, *command],
              env or {})
    runs.append(run.start())
    return run


def cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pylotto", *args], capture_output=True,
                          text=True, timeout=timeout, env={**os.environ})


def call(method: str, url: str, body: bytes = b"", timeout: float = 10) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body or None, method=method,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
