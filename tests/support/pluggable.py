"""Pluggable component servers for the tests (examples/pluggable), each a real process on a
Unix socket. ``start_component(kind)`` starts one per kind per test process (stopped at exit);
``ComponentServer`` starts one the caller controls (the e2e test kills and restarts it)."""

from __future__ import annotations

import atexit
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples" / "pluggable"
NODE_DIR = EXAMPLES / "node"


def npm_ci() -> None:
    """Install the Node example's pinned packages (package-lock.json) once."""
    if (NODE_DIR / "node_modules" / ".package-lock.json").exists():
        return
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm is needed for the Node.js pluggable component")
    subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=NODE_DIR, check=True,
                   stdout=subprocess.DEVNULL)


def command(kind: str, socket: Path) -> list[str]:
    if kind == "python":
        return [sys.executable, str(EXAMPLES / "python" / "memory_component.py"), str(socket)]
    if kind == "node":
        npm_ci()
        node = shutil.which("node") or "node"
        return [node, str(NODE_DIR / "server.js"), str(socket)]
    raise ValueError(f"unknown pluggable component server {kind!r}")


class ComponentServer:
    """One component server process serving ``socket``."""

    def __init__(self, kind: str, socket: Path) -> None:
        self.kind = kind
        self.socket = socket
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, wait: float = 30) -> ComponentServer:
        self.socket.unlink(missing_ok=True)
        self.process = subprocess.Popen(command(self.kind, self.socket), cwd=REPO)
        deadline = time.monotonic() + wait
        while not self.socket.exists():
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.kind} component exited with {self.process.returncode}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{self.kind} component did not create {self.socket}")
            time.sleep(0.1)
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def kill(self) -> None:
        """SIGKILL: the socket file stays behind, like after a crash."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None


_started: dict[str, ComponentServer] = {}


def start_component(kind: str) -> Path:
    """The socket of this test process's ``kind`` server, started on first use."""
    if kind not in _started:
        folder = Path(tempfile.mkdtemp(prefix="pyl-plug-"))
        server = ComponentServer(kind, folder / f"{kind}.sock").start()
        _started[kind] = server
        atexit.register(server.stop)
    return _started[kind].socket
