"""What ``pylotto`` says when it cannot start: one clear line, a meaningful exit code, no
traceback (issue 23's CLI messages, each seen as a user sees it)."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.e2e.sidecar import Sidecar, free_port

BLOCKED_RUN = """
import sys

class Blocked:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] == {module!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None

sys.meta_path.insert(0, Blocked())
sys.argv = ["pylotto", *sys.argv[1:]]
from pylotto.cli import main
main()
"""
"""``pylotto`` as a partial install runs it: one driver module cannot be imported."""


def pylotto(*args: str, cwd: Path, blocked: str | None = None
            ) -> subprocess.CompletedProcess[str]:
    command = ([sys.executable, "-c", BLOCKED_RUN.format(module=blocked)] if blocked
               else [sys.executable, "-m", "pylotto"])
    return subprocess.run([*command, *args], capture_output=True, text=True, timeout=60,
                          cwd=cwd, check=False)


def own_ports(tmp_path: Path) -> list[str]:
    return ["--data-dir", str(tmp_path / "data"),
            "--grpc-address", f"127.0.0.1:{free_port()}",
            "--actuator-address", f"127.0.0.1:{free_port()}",
            "--dapr-grpc-port", str(free_port())]


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", free_port()))
        sock.listen()
        yield sock.getsockname()[1]


def test_a_taken_dapr_http_port_is_one_line_and_exit_1(tmp_path: Path, taken_port: int) -> None:
    result = pylotto("run", *own_ports(tmp_path), "--dapr-http-port", str(taken_port),
                     cwd=tmp_path)
    assert result.returncode == 1, result.stderr  # daprd's exit code for a fatal start error
    assert (f"pylotto: Dapr HTTP API cannot listen on 127.0.0.1:{taken_port}: the address is "
            "already in use") in result.stderr
    assert "Traceback" not in result.stderr and "Event loop is closed" not in result.stderr
    assert result.stderr.rstrip().endswith("already in use"), result.stderr  # nothing after


def test_a_taken_port_under_workers_is_one_line_per_worker(tmp_path: Path,
                                                            taken_port: int) -> None:
    config = tmp_path / "shared.yaml"  # --workers takes shared backends only
    config.write_text(yaml.safe_dump(REDIS_STATE))
    result = pylotto("run", "-c", str(config), "--workers", "2", *own_ports(tmp_path),
                     "--dapr-http-port", str(taken_port), cwd=tmp_path)
    assert result.returncode == 1, result.stderr  # the failed worker's code
    assert (f"pylotto: Dapr HTTP API cannot listen on 127.0.0.1:{taken_port}: the address is "
            "already in use") in result.stderr
    assert "Traceback" not in result.stderr and "Event loop is closed" not in result.stderr


def test_an_app_command_not_found_exits_127_as_a_shell(tmp_path: Path) -> None:
    result = pylotto("run", *own_ports(tmp_path), "--dapr-http-port", str(free_port()),
                     "--", "nosuchcmd", "--flag", cwd=tmp_path)
    assert result.returncode == 127, result.stderr
    assert result.stderr.strip() == "pylotto: cannot start the app: nosuchcmd: command not found"
    not_executable = tmp_path / "app.sh"
    not_executable.write_text("echo hi\n")
    result = pylotto("run", *own_ports(tmp_path), "--", "./app.sh", cwd=tmp_path)
    assert result.returncode == 126, result.stderr
    assert "cannot start the app: ./app.sh: permission denied" in result.stderr
    assert "Traceback" not in result.stderr


REDIS_STATE = {"components": {"state": {"cache": {
    "type": "redis", "metadata": {"redisHost": "127.0.0.1:6379"}}}}}


@pytest.mark.parametrize("module", ["hiredis", "redis"])
def test_a_partial_install_fails_check_config_naming_the_extra(tmp_path: Path,
                                                               module: str) -> None:
    config = tmp_path / "pylotto.yaml"
    config.write_text(yaml.safe_dump(REDIS_STATE))
    expected = (f"state.cache: state component type 'redis': its driver is not installed "
                f"(no module {module!r}): pip install 'pylotto[redis]'")
    checked = pylotto("check-config", str(config), cwd=tmp_path, blocked=module)
    assert checked.returncode == 1, checked.stdout + checked.stderr
    assert expected in checked.stderr
    started = pylotto("run", "-c", str(config), *own_ports(tmp_path),
                      "--dapr-http-port", str(free_port()), cwd=tmp_path, blocked=module)
    assert started.returncode == 2, started.stderr  # refused before anything starts
    assert expected in started.stderr
    assert "Traceback" not in started.stderr and f"No module named '{module}'" not in \
        started.stderr
    assert pylotto("check-config", str(config), cwd=tmp_path).returncode == 0  # all installed


def test_an_unknown_metadata_key_gets_a_did_you_mean(tmp_path: Path) -> None:
    components = {"state": {"db": {"type": "sqlite", "metadata": {
        "tableNme": "items", "ttlInSecond": "5"}}}}
    config = tmp_path / "check.yaml"
    config.write_text(yaml.safe_dump({"components": components}))
    checked = pylotto("check-config", str(config), cwd=tmp_path)
    assert checked.returncode == 3, checked.stderr  # accepted with warnings
    assert ("component state.db: unknown metadata key 'tableNme' ignored; did you mean "
            "'tableName'?") in checked.stderr
    assert "unknown metadata key 'ttlInSecond' ignored; did you mean 'ttlInSeconds'?" in \
        checked.stderr
    car = Sidecar(tmp_path / "car", components=components)
    car.start()
    try:
        logs = car.logs()
    finally:
        car.stop()
    assert ("component state.db: unknown metadata key 'tableNme' ignored; did you mean "
            "'tableName'?") in logs
