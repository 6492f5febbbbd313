"""Fixtures that run the real ``pylotto`` process (see sidecar.py)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.dapr_run import Run
from tests.e2e.sidecar import Sidecar

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def sidecar(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sidecar]:
    """A sidecar with the embedded default components, shared by a test module."""
    car = Sidecar(tmp_path_factory.mktemp("sidecar")).start()
    yield car
    car.stop()


@pytest.fixture
def start_sidecar(tmp_path: Path) -> Iterator[Callable[..., Sidecar]]:
    """Factory: ``start_sidecar(components=None, app=None)`` → a ready Sidecar."""
    started: list[Sidecar] = []

    def start(
        components: dict[str, Any] | None = None,
        app: dict[str, Any] | None = None,
        extra_args: list[str] | None = None,
    ) -> Sidecar:
        car = Sidecar(tmp_path / f"sidecar{len(started)}", components, app, extra_args or [])
        started.append(car)
        return car.start()

    yield start
    for car in started:
        car.stop()


class _Echo(BaseHTTPRequestHandler):
    """Answers every request with JSON describing it (method, path, body, headers); a path
    under ``/status/<code>`` answers that status."""

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        reply = json.dumps({"method": self.command, "path": self.path,
                            "body": body.decode()}).encode()
        status = 200
        if self.path.startswith("/status/"):
            status = int(self.path.split("/")[2].split("?")[0])
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.send_header("X-Echo", "yes")
        self.send_header("X-Echo-Token", self.headers.get("dapr-api-token") or "")
        self.end_headers()
        self.wfile.write(reply)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _answer

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def echo_port() -> Iterator[int]:
    """An HTTP app on a free port that echoes every request."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()


@pytest.fixture
def runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Run]]:
    """``pylotto run`` subprocesses a test started (tests/e2e/dapr_run.py), killed at the
    end; ``pylotto list`` records in a private folder."""
    monkeypatch.setenv("PYLOTTO_RUN_DIR", str(tmp_path / "run-records"))
    started: list[Run] = []
    yield started
    for run in started:
        run.kill()
