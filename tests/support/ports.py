"""Ports for servers the tests start.

A port the kernel hands out for ``bind(("127.0.0.1", 0))`` lies in the ephemeral range, so between
closing the probe socket and the server binding it, any outgoing connection (a Redis client, a
sidecar dialling another) may take it as its source port: the server then fails with "address in
use". Ports handed out here lie below the ephemeral range, where the kernel never picks source
ports, and none is handed out twice in one test process.
"""

from __future__ import annotations

import os
import random
import socket
import threading

_LOW, _HIGH = 20000, 32000
"""Below Linux's default ephemeral range (32768-60999), above the well-known services."""

_lock = threading.Lock()
_given: set[int] = set()
_rng = random.Random(os.getpid())


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port() -> int:
    """A loopback port nobody listens on, never returned before in this process."""
    with _lock:
        for _ in range(_HIGH - _LOW):
            port = _rng.randrange(_LOW, _HIGH)
            if port not in _given and _bindable(port):
                _given.add(port)
                return port
    raise RuntimeError(f"no free port in {_LOW}-{_HIGH}")
