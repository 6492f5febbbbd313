"""``pipx install`` of the sidecar's wheel: its own venv (under a private PIPX_HOME), the
``pylotto`` command on PIPX_BIN_DIR, working."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.packaging.conftest import offline


def test_pipx_installs_the_sidecar(wheels: Path, tmp_path: Path) -> None:
    env = {**offline(wheels), "PIPX_HOME": str(tmp_path / "pipx"),
           "PIPX_BIN_DIR": str(tmp_path / "bin"), "PIPX_MAN_DIR": str(tmp_path / "man")}
    (wheel,) = wheels.glob("pylotto-[0-9]*.whl")
    pipx = [sys.executable, "-m", "pipx"]
    # --no-compile: no byte code written for the ~50 dependencies (the image test compiles)
    subprocess.run([*pipx, "install", "--pip-args",
                    f"--no-compile --constraint {wheels / 'lock.txt'}",
                    str(wheel)], check=True, capture_output=True, env=env)
    listed = json.loads(subprocess.run([*pipx, "list", "--json"], check=True, env=env,
                                       capture_output=True, text=True).stdout)
    app = listed["venvs"]["pylotto"]["metadata"]["main_package"]
    assert app["package_version"] == "0.1.0" and "pylotto" in app["apps"]
    pylotto = tmp_path / "bin" / "pylotto"
    version = subprocess.run([pylotto, "--version"], check=True, capture_output=True, text=True)
    assert version.stdout.strip() == "pylotto, version 0.1.0"
    # components of the sidecar's own dependencies, checked by its venv (nothing of this one)
    config = tmp_path / "pylotto.yaml"
    config.write_text("components:\n  state: {db: {type: sqlite}}\n"
                      "  pubsub: {events: {type: in-memory}}\n")
    checked = subprocess.run([pylotto, "check-config", config], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "2 components" in checked.stdout


@pytest.fixture(autouse=True)
def _no_user_pipx(monkeypatch: pytest.MonkeyPatch) -> None:
    """pipx must not touch the machine's own PIPX_HOME or ~/.local/bin."""
    monkeypatch.delenv("PIPX_HOME", raising=False)
    monkeypatch.delenv("PIPX_BIN_DIR", raising=False)
