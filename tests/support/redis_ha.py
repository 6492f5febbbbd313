"""Real highly available Redis set-ups on free loopback ports, from Debian's ``redis-server``:

- :func:`start_cluster`: a Redis Cluster of three masters (``--cluster-enabled yes``), with
  replicas when asked, its 16384 slots assigned by ``redis-cli --cluster create``;
- :func:`start_sentinel_set`: a master, two replicas and three sentinels (``redis-server
  --sentinel``) watching it as ``mymaster``, with ``down-after-milliseconds`` 1000 so a failover
  takes a few seconds.

Each returns an object that knows its processes and stops them (``stop()``); a server that
does not come up fails the test set-up (no skip).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.ports import free_port

MASTER_NAME = "mymaster"
DOWN_AFTER_MS = 1000
FAILOVER_TIMEOUT_MS = 2000
"""A failed election is tried again after twice this (Sentinel's default: 3 minutes)."""


def _binary(name: str) -> str:
    found = shutil.which(name) or f"/usr/bin/{name}"
    if not Path(found).exists():
        raise RuntimeError(f"{name} is not installed (Debian package redis-server / redis-tools)")
    return found


def _wait_port(port: int, process: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} on port {port} exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not come up on 127.0.0.1:{port}")


def cli(port: int, *args: str) -> str:
    """``redis-cli -p port args...``'s output."""
    done = subprocess.run([_binary("redis-cli"), "-p", str(port), *args], capture_output=True,
                          text=True, timeout=10, check=False)
    return done.stdout


@dataclass
class Servers:
    directory: Path
    processes: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(self, port: int, *args: str, what: str = "redis-server") -> None:
        log = open(self.directory / f"{port}.log", "wb")  # noqa: SIM115 (kept by the process)
        process = subprocess.Popen([_binary("redis-server"), *args], stdout=log,
                                   stderr=subprocess.STDOUT, cwd=self.directory)
        self.processes[port] = process
        _wait_port(port, process, what)

    def kill(self, port: int) -> None:
        """SIGKILL: the server dies without a word to anyone (no shutdown, no save)."""
        process = self.processes.pop(port)
        process.kill()
        process.wait(5)

    def stop(self) -> None:
        for process in self.processes.values():
            process.kill()
        for process in self.processes.values():
            process.wait(5)
        self.processes.clear()
        shutil.rmtree(self.directory, ignore_errors=True)


def _server_args(port: int) -> list[str]:
    return ["--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--protected-mode", "no"]


@dataclass
class Cluster(Servers):
    ports: list[int] = field(default_factory=list)

    @property
    def redis_host(self) -> str:
        return ",".join(f"127.0.0.1:{port}" for port in self.ports)

    def nodes(self) -> list[list[str]]:
        """``CLUSTER NODES`` as a live node sees it, one field list per node."""
        for port in self.processes:
            out = cli(port, "CLUSTER", "NODES")
            if out.strip():
                return [line.split() for line in out.strip().splitlines()]
        return []

    def master_of(self, slot: int) -> int | None:
        """The port of the master serving ``slot`` (None: no live master does)."""
        for fields in self.nodes():
            if "master" not in fields[2] or "fail" in fields[2]:
                continue
            for served in fields[8:]:
                low, _, high = served.partition("-")
                if low.isdigit() and int(low) <= slot <= int(high or low):
                    return int(fields[1].split(":")[1].split("@")[0])
        return None

    def replicas_linked(self) -> bool:
        return all("master_link_status:up" in cli(fields_port, "INFO", "replication")
                   for fields_port in (int(f[1].split(":")[1].split("@")[0])
                                       for f in self.nodes() if "slave" in f[2]))


def start_cluster(masters: int = 3, replicas: int = 0, node_timeout_ms: int = 2000) -> Cluster:
    """``masters`` masters, each with ``replicas`` replicas."""
    cluster = Cluster(Path(tempfile.mkdtemp(prefix="pylotto-cluster-")))
    try:
        for _ in range(masters * (1 + replicas)):
            port = free_port()
            cluster.ports.append(port)
            cluster.start(port, *_server_args(port), "--cluster-enabled", "yes",
                          "--cluster-port", str(free_port()),  # the bus: off port + 10000
                          "--cluster-config-file", f"nodes-{port}.conf",
                          "--cluster-node-timeout", str(node_timeout_ms))
        created = subprocess.run(
            [_binary("redis-cli"), "--cluster", "create",
             *(f"127.0.0.1:{port}" for port in cluster.ports), "--cluster-replicas",
             str(replicas), "--cluster-yes"],
            capture_output=True, text=True, timeout=30, check=False)
        if created.returncode != 0:
            raise RuntimeError(f"redis-cli --cluster create failed: {created.stdout}"
                               f"{created.stderr}")
        deadline = time.monotonic() + 15
        while not all("cluster_state:ok" in cli(port, "CLUSTER", "INFO")
                      for port in cluster.ports):
            if time.monotonic() > deadline:
                raise RuntimeError("the cluster did not reach cluster_state:ok")
            time.sleep(0.1)
        while not cluster.replicas_linked():
            if time.monotonic() > deadline:
                raise RuntimeError("the cluster's replicas did not link to their masters")
            time.sleep(0.1)
        return cluster
    except BaseException:
        cluster.stop()
        raise


@dataclass
class SentinelSet(Servers):
    master: int = 0
    replicas: list[int] = field(default_factory=list)
    sentinels: list[int] = field(default_factory=list)

    @property
    def redis_host(self) -> str:
        """``redisHost`` of a component: the sentinels."""
        return ",".join(f"127.0.0.1:{port}" for port in self.sentinels)

    def master_port(self) -> int | None:
        """The master's port as the first sentinel that answers says (None: none knows)."""
        for port in self.sentinels:
            if port not in self.processes:
                continue
            out = cli(port, "SENTINEL", "get-master-addr-by-name", MASTER_NAME).split()
            if len(out) == 2:
                return int(out[1])
        return None

    def ready(self) -> bool:
        """Every sentinel sees the master, both replicas and the other sentinels."""
        for port in self.sentinels:
            info = cli(port, "SENTINEL", "master", MASTER_NAME).split("\n")
            fields = dict(zip(info[0::2], info[1::2], strict=False))
            if (fields.get("num-slaves") != str(len(self.replicas))
                    or fields.get("num-other-sentinels") != str(len(self.sentinels) - 1)):
                return False
        return all("master_link_status:up" in cli(port, "INFO", "replication")
                   for port in self.replicas)


def start_sentinel_set(replicas: int = 2, sentinels: int = 3) -> SentinelSet:
    group = SentinelSet(Path(tempfile.mkdtemp(prefix="pylotto-sentinel-")))
    try:
        group.master = free_port()
        group.start(group.master, *_server_args(group.master))
        for _ in range(replicas):
            port = free_port()
            group.replicas.append(port)
            group.start(port, *_server_args(port), "--replicaof", "127.0.0.1",
                        str(group.master))
        for _ in range(sentinels):
            port = free_port()
            group.sentinels.append(port)
            config = group.directory / f"sentinel-{port}.conf"
            config.write_text(
                f"port {port}\nbind 127.0.0.1\nprotected-mode no\n"
                f"dir {group.directory}\n"
                f"sentinel monitor {MASTER_NAME} 127.0.0.1 {group.master} 2\n"
                f"sentinel down-after-milliseconds {MASTER_NAME} {DOWN_AFTER_MS}\n"
                f"sentinel failover-timeout {MASTER_NAME} {FAILOVER_TIMEOUT_MS}\n"
                f"sentinel parallel-syncs {MASTER_NAME} 2\n")
            group.start(port, str(config), "--sentinel", what="redis-sentinel")
        deadline = time.monotonic() + 30
        while not group.ready():
            if time.monotonic() > deadline:
                raise RuntimeError("the sentinels did not find each other and the replicas")
            time.sleep(0.2)
        return group
    except BaseException:
        group.stop()
        raise
