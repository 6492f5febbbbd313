"""etcd without a leader (a member cut off from its quorum, an election under way) is
UNAVAILABLE, and served again once the cluster has a leader (issue 17). A three-member etcd
cluster of the test's own; two members are stopped (SIGSTOP) under the component's member, so
it loses its quorum and its leader, then let go (SIGCONT)."""

from __future__ import annotations

import asyncio
import logging
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pylotto.components._backends.etcd_client import ERRORS
from pylotto.components.base import Component, ComponentContext
from pylotto.components.state.base import Consistency, SetRequest
from pylotto.core.errors import Internal, Unavailable
from pylotto.core.metadata import decode
from pylotto.core.registry import resolve
from tests.support.ports import free_port

pytestmark = pytest.mark.timeout(90)


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[list[int], list[subprocess.Popen[bytes]]]]:
    """(client ports, processes) of three etcd members on loopback."""
    etcd = shutil.which("etcd")
    assert etcd, "etcd is not installed (scripts/start-services.sh installs it)"
    names = ["m0", "m1", "m2"]
    clients = [free_port() for _ in names]
    peers = [free_port() for _ in names]
    initial = ",".join(f"{n}=http://127.0.0.1:{p}" for n, p in zip(names, peers, strict=True))
    processes = []
    for name, client, peer in zip(names, clients, peers, strict=True):
        processes.append(subprocess.Popen(
            [etcd, "--name", name, "--data-dir", str(tmp_path / name),
             "--listen-client-urls", f"http://127.0.0.1:{client}",
             "--advertise-client-urls", f"http://127.0.0.1:{client}",
             "--listen-peer-urls", f"http://127.0.0.1:{peer}",
             "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
             "--initial-cluster", initial, "--initial-cluster-state", "new",
             "--initial-cluster-token", tmp_path.name, "--heartbeat-interval", "50",
             "--election-timeout", "500", "--log-level", "error"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    try:
        deadline = time.monotonic() + 30
        while not all(_listening(port) for port in clients):
            assert all(p.poll() is None for p in processes), "an etcd member exited"
            assert time.monotonic() < deadline, "etcd cluster not up after 30 s"
            time.sleep(0.1)
        yield clients, processes
    finally:
        for process in processes:
            process.send_signal(signal.SIGCONT)
            process.terminate()
        for process in processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()


async def test_no_leader_is_unavailable_then_served(
    cluster: tuple[list[int], list[subprocess.Popen[bytes]]], tmp_path: Path,
) -> None:
    clients, processes = cluster
    cls = resolve("state", "etcd")
    settings = decode(cls.Settings, {"endpoints": f"127.0.0.1:{clients[0]}", "timeout": "2s"},
                      component="state.etcd-cluster")
    store: Component = cls("etcd-cluster", settings, ComponentContext(
        app_id="app", data_dir=tmp_path, logger=logging.getLogger("test.etcd")))
    deadline = time.monotonic() + 20
    while True:  # the fresh cluster elects its first leader
        try:
            await store.init()
            await store.set(SetRequest("k", b"v"))
            break
        except Unavailable:
            await store.close()
            assert time.monotonic() < deadline, "the etcd cluster elected no leader in 20 s"
            await asyncio.sleep(0.2)
    try:
        for process in processes[1:]:
            process.send_signal(signal.SIGSTOP)
        await asyncio.sleep(1.5)  # three election timeouts: m0 knows it has no quorum
        with pytest.raises(Unavailable):
            await store.set(SetRequest("k", b"w"))
        with pytest.raises(Unavailable):
            await store.get("k", Consistency.STRONG, {})
        for process in processes[1:]:
            process.send_signal(signal.SIGCONT)
        deadline = time.monotonic() + 30
        while True:
            try:
                got = await store.get("k", Consistency.STRONG, {})
                break
            except Unavailable:
                assert time.monotonic() < deadline, "no leader 30 s after the members came back"
                await asyncio.sleep(0.2)
        assert got is not None and got.value in (b"v", b"w")  # the refused write may have landed
    finally:
        await store.close()


@pytest.mark.parametrize(("code", "details", "expected"), [
    ("UNAVAILABLE", "etcdserver: no leader", Unavailable),
    ("UNAVAILABLE", "etcdserver: leader changed", Unavailable),
    ("UNAVAILABLE", "etcdserver: request timed out", Unavailable),
    ("RESOURCE_EXHAUSTED", "etcdserver: too many requests", Unavailable),
    ("RESOURCE_EXHAUSTED", "grpc: received message larger than max", Internal),
    ("INVALID_ARGUMENT", "etcdserver: request is too large", Internal),
])
def test_the_error_table(code: str, details: str, expected: type[Exception]) -> None:
    """etcd's answers (rpctypes' status codes and texts) as the gRPC client raises them."""
    import grpc

    error = grpc.aio.AioRpcError(getattr(grpc.StatusCode, code), grpc.aio.Metadata(),
                                 grpc.aio.Metadata(), details)
    assert type(ERRORS.map(error, "state store s")) is expected
