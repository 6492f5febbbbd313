"""Start the real ``pylotto run`` process for end-to-end tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import yaml

from pylotto.proto.layotto import runtime_pb2_grpc
from tests.support.ports import free_port

__all__ = ["Sidecar", "free_port"]

READY_TIMEOUT_SECONDS = 30.0


@dataclass
class Sidecar:
    """A ``pylotto run`` subprocess on free ports with a private data dir."""

    workdir: Path
    components: dict[str, Any] | None = None
    app: dict[str, Any] | None = None
    extra_args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    extra_config: dict[str, Any] = field(default_factory=dict)
    """Top-level keys added to the generated pylotto.yaml (name_resolution...)."""
    extra_listen: dict[str, str] = field(default_factory=dict)
    """Listen addresses added to the generated pylotto.yaml (internal_grpc...)."""
    embedded: bool = False
    """No file at all: the embedded default, on these ports through the command line."""
    grpc_port: int = field(default_factory=free_port)
    actuator_port: int = field(default_factory=free_port)
    dapr_grpc_port: int = field(default_factory=free_port)
    dapr_http_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    _channels: list[grpc.Channel] = field(default_factory=list)

    @property
    def grpc_address(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def dapr_grpc_address(self) -> str:
        return f"127.0.0.1:{self.dapr_grpc_port}"

    @property
    def dapr_http_url(self) -> str:
        return f"http://127.0.0.1:{self.dapr_http_port}"

    @property
    def actuator_url(self) -> str:
        return f"http://127.0.0.1:{self.actuator_port}"

    @property
    def data_dir(self) -> Path:
        return self.workdir / "data"

    @property
    def config_path(self) -> Path:
        return self.workdir / "pylotto.yaml"

    @property
    def log_path(self) -> Path:
        return self.workdir / "sidecar.log"

    def write_config(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        body: dict[str, Any] = {
            "listen": {
                "layotto_grpc": self.grpc_address,
                "actuator": f"127.0.0.1:{self.actuator_port}",
            },
            "data_dir": str(self.data_dir),
            "grace_period_seconds": 5,
        }
        body.update(self.extra_config)
        body["listen"].update(self.extra_listen)
        if self.app:
            body["app"] = self.app
        if self.components is not None:
            body["components"] = self.components
        else:
            from pylotto.config.model import embedded_default

            body["components"] = {}
            for spec in embedded_default().components:
                body["components"].setdefault(spec.capability, {})[spec.name] = {
                    "type": spec.type, "metadata": spec.metadata,
                }
        self.config_path.write_text(yaml.safe_dump(body))

    def start(self) -> Sidecar:
        if self.embedded:
            self.workdir.mkdir(parents=True, exist_ok=True)
            config = ["--grpc-address", self.grpc_address, "--actuator-address",
                      f"127.0.0.1:{self.actuator_port}", "--dapr-internal-grpc-port",
                      str(free_port()), "--data-dir", str(self.data_dir)]
        else:
            self.write_config()
            config = ["--config", str(self.config_path)]
        log = self.log_path.open("ab")
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.env}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "pylotto", "run", *config,
             "--log-level", "debug", "--dapr-grpc-port", str(self.dapr_grpc_port),
             "--dapr-http-port", str(self.dapr_http_port), *self.extra_args],
            stdout=log, stderr=subprocess.STDOUT, env=env, cwd=self.workdir,
        )
        log.close()
        self.wait_ready()
        return self

    def wait_ready(self, timeout: float = READY_TIMEOUT_SECONDS) -> None:
        deadline = time.monotonic() + timeout
        url = f"{self.actuator_url}/actuator/health/readiness"
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"pylotto exited with {self.process.returncode}:\n{self.logs()}")
            try:
                with urllib.request.urlopen(url, timeout=1) as resp:
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.05)
        raise TimeoutError(f"pylotto not ready after {timeout}s:\n{self.logs()}")

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def channel(self) -> grpc.Channel:
        channel = grpc.insecure_channel(self.grpc_address)
        self._channels.append(channel)
        return channel

    def stub(self) -> runtime_pb2_grpc.RuntimeStub:
        return runtime_pb2_grpc.RuntimeStub(self.channel())

    def aio_channel(self) -> grpc.aio.Channel:
        return grpc.aio.insecure_channel(self.grpc_address)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int:
        for channel in self._channels:
            channel.close()
        self._channels.clear()
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        code = self.process.returncode
        self.process = None
        return code

    def restart(self) -> Sidecar:
        self.stop()
        return self.start()
