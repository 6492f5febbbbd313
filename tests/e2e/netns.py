"""Several hosts on one machine, for tests: Linux network namespaces joined by veth links to a
bridge (``ip netns``, ``ip link``; needs root and iproute2).

The bridge lives in a namespace of its own, and every address is in the private test subnet
:data:`SUBNET`, set only on links inside these namespaces: nothing is added to the machine's
own network, and no packet of a test leaves the namespaces. :meth:`Network.close` ends every
process still running in them and deletes them (also after a failed set-up); a network left
behind by a test process that was killed is deleted by the next one.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

SUBNET = "10.203.0"
"""The /24 of the test hosts (``.1``, ``.2``...) and of the bridge (``.254``)."""
BRIDGE_ADDRESS = f"{SUBNET}.254"
PREFIX = "plmh"
"""Namespace names: ``plmh<pid of the test process>-<host>``."""


class NetnsUnavailable(RuntimeError):
    """``ip netns`` cannot make the hosts here (not root, no iproute2, no kernel support)."""


def ip(*args: str) -> str:
    try:
        done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=20)
    except FileNotFoundError:
        raise NetnsUnavailable("the ip command (iproute2) is not installed") from None
    if done.returncode != 0:
        raise NetnsUnavailable(f"ip {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


@dataclass
class Host:
    """One host: a namespace with ``lo`` and ``eth0`` (its address on the bridge)."""

    namespace: str
    address: str
    processes: list[subprocess.Popen[Any]] = field(default_factory=list)

    def command(self, argv: Sequence[str]) -> list[str]:
        return ["ip", "netns", "exec", self.namespace, *argv]

    def popen(self, argv: Sequence[str], *, log: Path | None = None, **kwargs: Any
              ) -> subprocess.Popen[Any]:
        """``argv`` inside this host (``ip netns exec`` execs it: the pid is its own); its
        output goes to ``log`` when given."""
        out: IO[bytes] | None = log.open("ab") if log is not None else None
        try:
            if out is not None:
                kwargs.setdefault("stdout", out)
                kwargs.setdefault("stderr", subprocess.STDOUT)
            process = subprocess.Popen(self.command(argv), **kwargs)
        finally:
            if out is not None:
                out.close()
        self.processes.append(process)
        return process

    def run(self, argv: Sequence[str], timeout: float = 20, **kwargs: Any
            ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.command(argv), capture_output=True, text=True,
                              timeout=timeout, **kwargs)


def stop_process(process: subprocess.Popen[Any], timeout: float = 10) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


def _delete_namespace(name: str) -> None:
    """Kill what still runs in namespace ``name`` (only this module's namespaces get here),
    then delete it."""
    pids = subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True)
    for pid in pids.stdout.split():
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid), signal.SIGKILL)
    subprocess.run(["ip", "netns", "delete", name], capture_output=True)


def _sweep_left_behind() -> None:
    """Delete the namespaces of earlier test processes that no longer run."""
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True)
    for line in listed.stdout.splitlines():
        match = re.fullmatch(rf"({PREFIX}(\d+)-\w+)(?: \(id: \d+\))?", line.strip())
        if match and not Path(f"/proc/{match.group(2)}").exists():
            _delete_namespace(match.group(1))


class Network:
    """``count`` hosts (``SUBNET.1`` ... ``SUBNET.<count>``) on one bridge, which has
    ``BRIDGE_ADDRESS`` (for servers all hosts share). Hosts in ``routed`` (1-based) also get
    a default route through the bridge address, the others only their subnet. And
    :attr:`isolated`: a host with no link but loopback."""

    def __init__(self, count: int, *, routed: Sequence[int] = ()) -> None:
        self.count = count
        self.routed = set(routed)
        tag = f"{PREFIX}{os.getpid()}"
        self.bridge = Host(f"{tag}-br", BRIDGE_ADDRESS)
        self.hosts = [Host(f"{tag}-h{i}", f"{SUBNET}.{i}") for i in range(1, count + 1)]
        self.isolated = Host(f"{tag}-lo", "127.0.0.1")
        self._made: list[str] = []

    def create(self) -> Network:
        if os.geteuid() != 0:
            raise NetnsUnavailable("creating network namespaces needs root")
        if shutil.which("ip") is None:
            raise NetnsUnavailable("the ip command (iproute2) is not installed")
        _sweep_left_behind()
        try:
            self._create()
        except BaseException:
            self.close()
            raise
        return self

    def _create(self) -> None:
        bridge = self.bridge.namespace
        for host in (self.bridge, *self.hosts, self.isolated):
            ip("netns", "add", host.namespace)
            self._made.append(host.namespace)
            ip("-n", host.namespace, "link", "set", "lo", "up")
        ip("-n", bridge, "link", "add", "br0", "type", "bridge")
        ip("-n", bridge, "addr", "add", f"{BRIDGE_ADDRESS}/24", "dev", "br0")
        ip("-n", bridge, "link", "set", "br0", "up")
        for index, host in enumerate(self.hosts, start=1):
            port = f"v{index}"
            ip("-n", bridge, "link", "add", port, "type", "veth", "peer", "name", "eth0",
               "netns", host.namespace)
            ip("-n", bridge, "link", "set", port, "master", "br0", "up")
            ip("-n", host.namespace, "addr", "add", f"{host.address}/24", "dev", "eth0")
            ip("-n", host.namespace, "link", "set", "eth0", "up")
            if index in self.routed:
                ip("-n", host.namespace, "route", "add", "default", "via", BRIDGE_ADDRESS)
        self._wait_links_up()

    def _wait_links_up(self, timeout: float = 10) -> None:
        """Until every eth0 and the bridge forward (a new bridge port learns for a moment)."""
        deadline = time.monotonic() + timeout
        for host in (self.bridge, *self.hosts):
            link = "br0" if host is self.bridge else "eth0"
            while "state UP" not in ip("-n", host.namespace, "link", "show", link):
                if time.monotonic() > deadline:
                    raise NetnsUnavailable(f"{host.namespace}: {link} did not come up")
                time.sleep(0.05)

    def close(self) -> None:
        for host in (*self.hosts, self.isolated, self.bridge):
            for process in host.processes:
                stop_process(process)
            host.processes.clear()
        for name in reversed(self._made):
            _delete_namespace(name)
        self._made.clear()
