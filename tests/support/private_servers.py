"""A fresh Redis or etcd server of a test's own, on free ports, stopped when the test ends:
for a replay that needs an empty server (the first id is 1, the first etag is 1), as a
quickstart's ``docker run`` gives."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.ports import free_port


def _wait_port(port: int, process: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"{what} did not come up on 127.0.0.1:{port}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def private_redis(workdir: Path, password: str = "") -> Iterator[int]:
    """An empty ``redis-server`` (``--requirepass`` when ``password``); yields its port."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    command = [shutil.which("redis-server") or "/usr/bin/redis-server", "--port", str(port),
               "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
               "--dir", str(workdir)]
    if password:
        command += ["--requirepass", password]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_port(port, process, "redis-server")
        yield port
    finally:
        _stop(process)


@contextmanager
def private_etcd(workdir: Path) -> Iterator[int]:
    """An empty single-member ``etcd``; yields its client port."""
    workdir.mkdir(parents=True, exist_ok=True)
    client, peer = free_port(), free_port()
    process = subprocess.Popen(
        [shutil.which("etcd") or "/usr/bin/etcd", "--name", "quickstart",
         "--data-dir", str(workdir / "etcd"),
         "--listen-client-urls", f"http://127.0.0.1:{client}",
         "--advertise-client-urls", f"http://127.0.0.1:{client}",
         "--listen-peer-urls", f"http://127.0.0.1:{peer}",
         "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
         "--initial-cluster", f"quickstart=http://127.0.0.1:{peer}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_port(client, process, "etcd")
        yield client
    finally:
        _stop(process)
