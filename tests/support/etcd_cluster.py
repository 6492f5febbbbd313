"""A three-member etcd cluster of a test's own on loopback: the ``etcd`` binary of Debian's
etcd-server package (scripts/start-services.sh installs it), each member on free ports with
its data directory in memory (``/dev/shm``, so its fsyncs wait for no disk other jobs share).
Elections are quick by default (heartbeat 50 ms, election timeout 500 ms) so a test sees a
failover within a second; etcd's own defaults are 100 ms and 1 s."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc

from pylotto.proto.etcd import rpc_pb2, rpc_pb2_grpc
from tests.support.ports import free_port

MEMORY = "/dev/shm"
HEARTBEAT_MS = 50
ELECTION_MS = 500


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


@dataclass
class EtcdCluster:
    ports: list[int]
    """The members' client ports."""
    processes: list[subprocess.Popen[bytes]]

    def endpoint(self, index: int) -> str:
        return f"127.0.0.1:{self.ports[index]}"

    def endpoints(self, order: list[int] | None = None) -> str:
        """The ``endpoints`` value listing the members (in ``order``)."""
        return ",".join(self.endpoint(i) for i in (order or range(len(self.ports))))

    def kill(self, index: int) -> None:
        self.processes[index].send_signal(signal.SIGKILL)
        self.processes[index].wait(10)

    async def term(self) -> int:
        """The highest raft term a live member reports (each election round adds one)."""
        terms = []
        for index, process in enumerate(self.processes):
            if process.poll() is not None:
                continue
            async with grpc.aio.insecure_channel(self.endpoint(index)) as channel:
                status = await rpc_pb2_grpc.MaintenanceStub(channel).Status(
                    rpc_pb2.StatusRequest(), timeout=5)
            terms.append(int(status.raftTerm))
        return max(terms)

    async def leader(self, within: float = 20.0) -> int:
        """The index of the member that leads, once the live members agree on one."""
        deadline = time.monotonic() + within
        while True:
            leaders, ids = set(), {}
            for index, process in enumerate(self.processes):
                if process.poll() is not None:
                    continue
                try:
                    async with grpc.aio.insecure_channel(self.endpoint(index)) as channel:
                        status = await rpc_pb2_grpc.MaintenanceStub(channel).Status(
                            rpc_pb2.StatusRequest(), timeout=1)
                except grpc.aio.AioRpcError:
                    continue
                ids[status.header.member_id] = index
                leaders.add(status.leader)
            if len(leaders) == 1 and (leader := leaders.pop()) in ids:
                return ids[leader]
            assert time.monotonic() < deadline, f"no etcd leader after {within} s"
            await asyncio.sleep(0.1)


@contextmanager
def etcd_cluster(size: int = 3, tls: tuple[Path, Path, Path] | None = None,
                 extra: Sequence[str] = (), heartbeat_ms: int = HEARTBEAT_MS,
                 election_ms: int = ELECTION_MS) -> Iterator[EtcdCluster]:
    """``size`` members; with ``tls`` (certificate, key, CA) clients must connect with TLS
    and a client certificate the CA signed; ``extra``: more flags for every member."""
    etcd = shutil.which("etcd")
    assert etcd, "etcd is not installed (scripts/start-services.sh installs it)"
    with tempfile.TemporaryDirectory(prefix="pylotto-etcd-", dir=MEMORY if os.path.isdir(
            MEMORY) else None) as directory:
        yield from _members(etcd, Path(directory), size, tls, extra, heartbeat_ms, election_ms)


def _members(etcd: str, data: Path, size: int, tls: tuple[Path, Path, Path] | None,
             extra: Sequence[str], heartbeat_ms: int,
             election_ms: int) -> Iterator[EtcdCluster]:
    names = [f"m{i}" for i in range(size)]
    clients = [free_port() for _ in names]
    peers = [free_port() for _ in names]
    initial = ",".join(f"{n}=http://127.0.0.1:{p}" for n, p in zip(names, peers, strict=True))
    scheme = "https" if tls else "http"
    secure = ["--cert-file", str(tls[0]), "--key-file", str(tls[1]), "--trusted-ca-file",
              str(tls[2]), "--client-cert-auth"] if tls else []
    processes = []
    for name, client, peer in zip(names, clients, peers, strict=True):
        processes.append(subprocess.Popen(
            [etcd, "--name", name, "--data-dir", str(data / name), *secure, *extra,
             "--listen-client-urls", f"{scheme}://127.0.0.1:{client}",
             "--advertise-client-urls", f"{scheme}://127.0.0.1:{client}",
             "--listen-peer-urls", f"http://127.0.0.1:{peer}",
             "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
             "--initial-cluster", initial, "--initial-cluster-state", "new",
             "--initial-cluster-token", data.name, "--heartbeat-interval", str(heartbeat_ms),
             "--election-timeout", str(election_ms), "--log-level", "error"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    try:
        deadline = time.monotonic() + 30
        while not all(_listening(port) for port in clients):
            assert all(p.poll() is None for p in processes), "an etcd member exited"
            assert time.monotonic() < deadline, "etcd cluster not up after 30 s"
            time.sleep(0.1)
        yield EtcdCluster(clients, processes)
    finally:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGCONT)
                process.terminate()
        for process in processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
