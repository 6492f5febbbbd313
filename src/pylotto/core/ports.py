"""Free TCP ports for listeners pylotto chooses itself (``pylotto run`` with no port flags).

The Dapr CLI asks the kernel (``bind(("127.0.0.1", 0))``) and closes the probe: such a port lies
in the ephemeral range, so between the probe and the sidecar's bind any outgoing connection on the
machine (a Redis client, a sidecar dialling another) may take it as its source port, and the
sidecar fails with "address in use". The ports chosen here lie below the ephemeral range, where
the kernel never picks source ports; only another server starting at the same moment can take one.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

LOWEST = 20000
"""Above the registered ports most local services use."""
_EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_DEFAULT_EPHEMERAL_LOW = 32768
"""Linux's default first ephemeral port (used where the kernel's setting cannot be read)."""


def ephemeral_low() -> int:
    """The first port the kernel picks source ports from."""
    try:
        return int(_EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return _DEFAULT_EPHEMERAL_LOW


def bindable(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def free_port(host: str = "127.0.0.1", *, taken: set[int] | None = None,
              rng: random.Random | None = None) -> int:
    """A port nobody listens on now, below the ephemeral range and not in ``taken``; the
    kernel's choice when that range is empty (a machine whose ephemeral range starts low)."""
    draw = rng or random.SystemRandom()
    high = ephemeral_low()
    if high - LOWEST > 100:
        for _ in range(200):
            port = draw.randrange(LOWEST, high)
            if (taken is None or port not in taken) and bindable(port, host):
                return port
    with socket.socket() as probe:
        probe.bind((host, 0))
        chosen: int = probe.getsockname()[1]
        return chosen
