"""A fresh Redis or etcd server of a test's own, on free ports, stopped when the test ends:
for a replay that needs an empty server (the first id is 1, the first etag is 1), as a
quickstart's ``docker run`` gives."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.request
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


def _wait_etcd_healthy(port: int, process: subprocess.Popen[bytes]) -> None:
    """Until etcd answers ``/health`` true: an open port is not yet a member that serves (a
    loaded machine showed gRPC clients timing out on a freshly opened one)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"etcd exited with {process.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as resp:
                if json.load(resp).get("health") == "true":
                    return
        except (OSError, ValueError):
            pass
        time.sleep(0.1)
    raise RuntimeError("etcd did not become healthy within 30 s")


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
        _wait_etcd_healthy(client, process)
        yield client
    finally:
        _stop(process)
