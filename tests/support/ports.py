"""Ports for servers the tests start.

The rule (below the kernel's ephemeral range, so no outgoing connection takes a port between the
probe and the server's bind) is ``pylotto.core.ports``'s; this adds that none is handed out twice
in one test process, so two servers one test starts never get the same port.
"""

from __future__ import annotations

import os
import random
import threading

from pylotto.core import ports

_lock = threading.Lock()
_given: set[int] = set()
_rng = random.Random(os.getpid())


def free_port() -> int:
    """A loopback port nobody listens on, never returned before in this process."""
    with _lock:
        port = ports.free_port(taken=_given, rng=_rng)
        _given.add(port)
        return port
