"""pylotto-client on its own: its wheel in a clean venv holds grpcio and protobuf and none of the
sidecar, and talks to a running sidecar; its sources import nothing of the sidecar."""

from __future__ import annotations

import ast
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.sidecar import Sidecar
from tests.packaging.conftest import ROOT, distributions, new_venv

CLIENT_SRC = ROOT / "clients" / "python" / "src"

SIDECAR_ONLY = ("pylotto", "aiohttp", "pydantic", "click", "aiosqlite", "opentelemetry-sdk",
                "cryptography", "dapr", "pyyaml")
"""Distributions the sidecar needs and an app using the SDK must not get."""

CLIENT_SCRIPT = """
import asyncio, json, sys
from pylotto.client import AsyncClient, Client
address = sys.argv[1]
with Client(address) as client:
    hello = client.say_hello("quick_start_demo", "wheel")
    client.save_state("sqlite", "from-wheel", {"n": 1})
    stored = json.loads(client.get_state("sqlite", "from-wheel").value)
async def ids():
    async with AsyncClient(address) as client:
        return [await client.get_next_id("in-memory", "wheel") for _ in range(3)]
print(json.dumps({"hello": hello, "stored": stored, "ids": asyncio.run(ids())}))
"""


@pytest.fixture(scope="module")
def client_python(wheels: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    (wheel,) = wheels.glob("pylotto_client-*.whl")
    return new_venv(tmp_path_factory.mktemp("client") / "venv", wheels, wheel)


@pytest.fixture(scope="module")
def sidecar(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sidecar]:
    car = Sidecar(tmp_path_factory.mktemp("sidecar")).start()
    yield car
    car.stop()


def test_the_client_venv_holds_grpcio_and_protobuf_only(client_python: Path) -> None:
    installed = set(distributions(client_python))
    assert {"pylotto-client", "grpcio", "protobuf"} <= installed
    # grpcio's own dependency on Python 3.11 (typing-extensions) is all that may come along
    assert installed - {"pylotto-client", "grpcio", "protobuf", "typing-extensions"} == set()
    assert not installed & set(SIDECAR_ONLY)
    missing = subprocess.run([client_python, "-c", "import pylotto.cli"], capture_output=True,
                             text=True)
    assert missing.returncode == 1 and "No module named 'pylotto.cli'" in missing.stderr


def test_the_client_from_its_wheel_talks_to_a_sidecar(client_python: Path,
                                                      sidecar: Sidecar) -> None:
    run = subprocess.run([client_python, "-c", CLIENT_SCRIPT, sidecar.grpc_address],
                         check=True, capture_output=True, text=True, timeout=60)
    answer = json.loads(run.stdout)
    assert answer["hello"] == "greeting, wheel"
    assert answer["stored"] == {"n": 1}
    assert answer["ids"] == sorted(answer["ids"]) and len(set(answer["ids"])) == 3


def _imports(path: Path) -> Iterator[str]:
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)


def _in_client_sources(module: str) -> bool:
    base = CLIENT_SRC.joinpath(*module.split("."))
    return base.with_suffix(".py").is_file() or base.is_dir()


def test_the_client_sources_import_only_their_own_modules() -> None:
    offences = sorted(
        f"{path.relative_to(CLIENT_SRC)} imports {name}"
        for path in CLIENT_SRC.rglob("*.py")
        for name in _imports(path)
        if name.split(".")[0] == "pylotto" and not _in_client_sources(name)
        # `from pylotto.client.types import X`: X is a name in a client module, not a module
        and not _in_client_sources(name.rsplit(".", 1)[0]))
    assert offences == []
