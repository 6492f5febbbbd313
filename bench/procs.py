"""The processes under test: the real ``pylotto run`` sidecar, the minimal grpc.aio baseline,
and their CPU (from /proc/<pid>/stat) and RSS (from /proc/<pid>/status)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pylotto.core import ports

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


_given: set[int] = set()


def free_port() -> int:
    """A port nothing listens on now, below the ephemeral range (``pylotto.core.ports``),
    never handed out twice in one run."""
    port = ports.free_port(taken=_given)
    _given.add(port)
    return port


def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            text = (task / "children").read_text().split()
            out.extend(int(c) for c in text)
    except OSError:
        pass
    return out


def cpu_seconds(pid: int) -> float:
    """user+sys CPU seconds of ``pid`` and its child processes (``--workers``)."""
    total = 0.0
    for p in [pid, *_children(pid)]:
        try:
            stat = Path(f"/proc/{p}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime
    return total


def rss_mb(pid: int) -> float:
    """Resident set size of ``pid`` and its child processes, in MB (10^6 bytes)."""
    total = 0
    for p in [pid, *_children(pid)]:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            continue
    return total / 1e6


def wait_tcp(port: int, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.02)
    raise TimeoutError(f"nothing listening on {port} after {timeout}s")


@dataclass
class Sidecar:
    """A ``pylotto run`` subprocess; ``components`` None means the embedded default."""

    workdir: Path
    components: dict[str, Any] | None
    extra_args: list[str] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    """Top-level config keys beside the components (``app``, ``name_resolution``...)."""
    grpc_port: int = field(default_factory=free_port)
    actuator_port: int = field(default_factory=free_port)
    env: dict[str, str] = field(default_factory=dict)
    """More environment (``PYTHONPATH=<another checkout>/src`` runs that build: an A/B)."""
    process: subprocess.Popen[bytes] | None = None
    ready_seconds: float = 0.0

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> Sidecar:
        self.workdir.mkdir(parents=True, exist_ok=True)
        args = [sys.executable, "-m", "pylotto", "run", "--log-level", "warning",
                "--dapr-grpc-port", "0", "--dapr-http-port", "0", "--no-hot-reload",
                "--data-dir", str(self.workdir / "data")]
        if self.components is None:
            args += ["--grpc-address", self.address,
                     "--actuator-address", f"127.0.0.1:{self.actuator_port}"]
        else:
            config = self.workdir / "pylotto.yaml"
            config.write_text(yaml.safe_dump({
                "listen": {"layotto_grpc": self.address,
                           "actuator": f"127.0.0.1:{self.actuator_port}"},
                "app": {"id": "bench"},
                "components": self.components,
                **self.config,
            }))
            args += ["--config", str(config)]
        log = (self.workdir / "sidecar.log").open("ab")
        began = time.monotonic()
        self.process = subprocess.Popen([*args, *self.extra_args], stdout=log,
                                        stderr=subprocess.STDOUT, cwd=self.workdir,
                                        env={**os.environ, **self.env} if self.env else None)
        log.close()
        url = f"http://127.0.0.1:{self.actuator_port}/actuator/health/readiness"
        while True:
            if self.process.poll() is not None:
                raise RuntimeError((self.workdir / "sidecar.log").read_text(errors="replace"))
            if time.monotonic() - began > 30:
                raise TimeoutError("sidecar not ready after 30 s")
            try:
                with urllib.request.urlopen(url, timeout=1) as resp:
                    if resp.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.005)
        self.ready_seconds = time.monotonic() - began
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


@dataclass
class ServerProcess:
    """``python -m <module> --port N``: ``bench.baseline_server`` (the least a Python gRPC
    sidecar can do) or ``bench.echo_app`` (the app of the invocation scenario)."""

    module: str = "bench.baseline_server"
    port: int = field(default_factory=free_port)
    args: list[str] = field(default_factory=list)
    """More arguments after ``--port N``."""
    process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> ServerProcess:
        self.process = subprocess.Popen(
            [sys.executable, "-m", self.module, "--port", str(self.port), *self.args],
            cwd=Path(__file__).resolve().parent.parent)
        wait_tcp(self.port, self.process)
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        self.process = None
