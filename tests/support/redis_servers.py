"""Extra ``redis-server`` processes on free ports (a redlock needs several independent
servers): ``extra_redis(n)`` starts them once per test process and stops them at exit."""

from __future__ import annotations

import atexit
import shutil
import socket
import subprocess
import tempfile
import time

from tests.support.ports import free_port

_started: list[tuple[int, subprocess.Popen[bytes]]] = []


def start_redis(port: int) -> subprocess.Popen[bytes]:
    server = shutil.which("redis-server") or "/usr/bin/redis-server"
    process = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", tempfile.gettempdir()], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return process
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"redis-server did not come up on 127.0.0.1:{port}")


def extra_redis(count: int) -> list[int]:
    """The ports of ``count`` extra Redis servers (the same ones for the whole run)."""
    while len(_started) < count:
        port = free_port()
        _started.append((port, start_redis(port)))
    return [port for port, _ in _started[:count]]


@atexit.register
def _stop() -> None:
    for _, process in _started:
        process.terminate()
    for _, process in _started:
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
