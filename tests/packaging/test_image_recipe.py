"""deploy/Containerfile without a container engine: its steps run here as the image runs them.

The build stage's script builds the wheels (the session's ``wheels``); the runtime stage's script
installs them into a venv with the system python3 (root-owned, as /opt/pylotto in the image); then
the ENTRYPOINT runs as an unprivileged user (``nobody`` here, uid 10001 in the image) with its
listen addresses moved to free ports: on all interfaces without a token it refuses to start; on
loopback with DAPR_API_TOKEN the HEALTHCHECK command, the actuator probes and the APIs answer.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from pylotto.client import Client, ClientError
from pylotto.config.model import ListenConfig
from tests.packaging.conftest import DEPLOY, offline
from tests.support.ports import free_port

SYSTEM_PYTHON = Path("/usr/bin/python3")
"""The python3 of the image's base: one every user may run (this venv's lies under /root)."""

USER, GROUP = "nobody", "nogroup"


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Containerfile, continuation lines joined, comments out."""
    lines: list[str] = []
    pending = ""
    for raw in path.read_text().splitlines():
        if raw.lstrip().startswith("#") or not raw.strip():
            continue
        if raw.endswith("\\"):
            pending += raw[:-1] + " "
            continue
        lines.append(pending + raw)
        pending = ""
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1].strip()) for line in lines]


RECIPE = instructions(DEPLOY / "Containerfile")


def final_stage() -> list[tuple[str, str]]:
    starts = [i for i, (keyword, _) in enumerate(RECIPE) if keyword == "FROM"]
    return RECIPE[starts[-1]:]


def argument(keyword: str) -> str:
    (found,) = [args for key, args in final_stage() if key == keyword]
    return found


def _port(address: str) -> int:
    return int(address.rsplit(":", 1)[1])


def test_the_recipe_builds_wheels_then_runs_a_venv_as_a_user() -> None:
    stages = [args for key, args in RECIPE if key == "FROM"]
    assert len(stages) == 2 and stages[0].endswith(" AS build")
    runs = [args for key, args in RECIPE if key == "RUN"]
    assert runs[0] == "deploy/build-wheels.sh /wheels"
    assert any(run.startswith("/usr/local/lib/pylotto/install.sh /tmp/wheels /opt/pylotto")
               for run in runs)
    user = argument("USER").split(":")
    assert all(part.isdigit() and int(part) != 0 for part in user)
    defaults = ListenConfig()
    assert {int(port) for port in argument("EXPOSE").split()} == {
        _port(defaults.layotto_grpc), _port(defaults.dapr_grpc), _port(defaults.dapr_http),
        _port(defaults.internal_grpc), _port(defaults.actuator)}
    assert "/actuator/health/liveness" in (DEPLOY / "healthcheck.py").read_text()


@dataclass
class Image:
    """The runtime stage laid out here: the venv, the copied scripts, the user's home."""

    venv: Path
    lib: Path
    home: Path

    def as_user(self, *command: str | Path, **options: object) -> subprocess.Popen[bytes]:
        env = {"PATH": f"{self.venv / 'bin'}:/usr/bin:/bin", "HOME": str(self.home),
               "PYTHONUNBUFFERED": "1", **options.pop("env", {})}  # type: ignore[dict-item]
        return subprocess.Popen(command, user=USER, group=GROUP, extra_groups=[], env=env,
                                cwd=self.home, **options)  # type: ignore[call-overload]

    def healthcheck(self, url: str) -> int:
        command = json.loads(argument("HEALTHCHECK").split(" CMD ", 1)[1])
        assert command[:2] == ["python3", "/usr/local/lib/pylotto/healthcheck.py"]
        probe = self.as_user(SYSTEM_PYTHON, self.lib / "healthcheck.py",
                             env={"PYLOTTO_HEALTH_URL": url}, stderr=subprocess.DEVNULL)
        return probe.wait(10)


@pytest.fixture(scope="module")
def image(wheels: Path) -> Iterator[Image]:
    root = Path(tempfile.mkdtemp(prefix="pylotto-image-"))
    root.chmod(0o755)
    lib = root / "usr-local-lib-pylotto"  # COPY deploy/install.sh deploy/healthcheck.py
    lib.mkdir()
    for name in ("install.sh", "healthcheck.py"):
        shutil.copy2(DEPLOY / name, lib / name)
    venv = root / "opt-pylotto"
    subprocess.run([lib / "install.sh", wheels, venv], check=True, capture_output=True,
                   env={**offline(wheels), "PYTHON": str(SYSTEM_PYTHON)})
    home = root / "var-lib-pylotto"  # useradd --create-home; then USER
    home.mkdir()
    shutil.chown(home, USER, GROUP)
    yield Image(venv, lib, home)
    shutil.rmtree(root, ignore_errors=True)


def _rebound(entrypoint: list[str], values: dict[str, str]) -> list[str]:
    """The ENTRYPOINT with each flag of ``values`` given that value instead."""
    args = list(entrypoint)
    for flag, value in values.items():
        args[args.index(flag) + 1] = value
    return args


def _uids(pid: int) -> list[int]:
    status = Path(f"/proc/{pid}/status").read_text()
    line = next(line for line in status.splitlines() if line.startswith("Uid:"))
    return [int(uid) for uid in line.split()[1:]]


def _entrypoint(image: Image, host: str, *ports: int) -> list[str]:
    """The ENTRYPOINT with its listeners on ``host`` and the given free ports (gRPC, actuator,
    Dapr gRPC, Dapr HTTP), its data under the user's home."""
    grpc_port, actuator_port, dapr_grpc, dapr_http = ports
    entrypoint = json.loads(argument("ENTRYPOINT"))
    assert entrypoint[:2] == ["pylotto", "run"]
    rebound = _rebound(entrypoint, {
        "--grpc-address": f"{host}:{grpc_port}",
        "--actuator-address": f"{host}:{actuator_port}",
        "--dapr-listen-addresses": host,
        "--data-dir": str(image.home / "data"),
    })
    return [*rebound, "--dapr-grpc-port", str(dapr_grpc), "--dapr-http-port", str(dapr_http)]


def test_the_image_refuses_its_network_listeners_without_a_token(image: Image) -> None:
    """All interfaces, as the image listens, and no DAPR_API_TOKEN: refused before any bind."""
    refused = image.as_user(*_entrypoint(image, "0.0.0.0", *(free_port() for _ in range(4))),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    output, _ = refused.communicate(timeout=60)
    assert refused.returncode == 2, output.decode()
    assert b"refusing to start" in output and b"DAPR_API_TOKEN" in output


def test_the_image_serves_as_an_unprivileged_user(image: Image) -> None:
    grpc_port, actuator_port, dapr_http = free_port(), free_port(), free_port()
    actuator = f"http://127.0.0.1:{actuator_port}/actuator/health"
    command = _entrypoint(image, "127.0.0.1", grpc_port, actuator_port, free_port(), dapr_http)
    token = "image-test-token"

    assert image.healthcheck(f"{actuator}/liveness") == 1  # nothing listens yet
    log = (image.home / "sidecar.log").open("wb")
    sidecar = image.as_user(*command, env={"DAPR_API_TOKEN": token}, stdout=log,
                            stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 45
        while image.healthcheck(f"{actuator}/liveness") != 0:
            assert sidecar.poll() is None, (image.home / "sidecar.log").read_text()
            assert time.monotonic() < deadline, (image.home / "sidecar.log").read_text()
            time.sleep(0.2)
        assert 0 not in _uids(sidecar.pid)
        assert Path(f"/proc/{sidecar.pid}/exe").resolve() == SYSTEM_PYTHON.resolve()
        with urllib.request.urlopen(f"{actuator}/readiness", timeout=5) as ready:
            assert ready.status == 200
        with urllib.request.urlopen(f"http://127.0.0.1:{dapr_http}/v1.0/healthz",
                                    timeout=5) as healthz:
            assert healthz.status == 204
        with Client(f"127.0.0.1:{grpc_port}", api_token=token) as client:
            assert client.say_hello("quick_start_demo", "image") == "greeting, image"
            client.save_state("sqlite", "k", b"kept by the user")
        with Client(f"127.0.0.1:{grpc_port}", api_token="wrong") as client, \
                pytest.raises(ClientError) as refused:
            client.get_state("sqlite", "k")
        assert refused.value.code == grpc.StatusCode.UNAUTHENTICATED
        assert os.stat(image.home / "data").st_uid != 0  # the data the user wrote
    finally:
        sidecar.send_signal(signal.SIGTERM)
        code = sidecar.wait(20)
        log.close()
    assert code == 0, (image.home / "sidecar.log").read_text()
