"""Ports pylotto picks itself lie below the kernel's ephemeral range and are free."""

from __future__ import annotations

import random
import socket
from pathlib import Path

from pylotto.core import ports


def test_a_chosen_port_is_below_the_ephemeral_range_and_bindable() -> None:
    rng = random.Random(7)
    for _ in range(20):
        port = ports.free_port(rng=rng)
        assert ports.LOWEST <= port < ports.ephemeral_low()
        assert ports.bindable(port)


def test_ports_already_taken_are_not_chosen_again() -> None:
    rng = random.Random(11)
    taken: set[int] = set()
    for _ in range(50):
        port = ports.free_port(taken=taken, rng=rng)
        assert port not in taken
        taken.add(port)
    assert len(taken) == 50


def test_a_port_someone_listens_on_is_not_bindable() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        assert not ports.bindable(server.getsockname()[1])


def test_the_kernels_first_ephemeral_port_is_read_from_proc() -> None:
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    assert ports.ephemeral_low() == low
