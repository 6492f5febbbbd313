"""The real servers the suites run against; a check that fails (never skips) if one is down."""

from __future__ import annotations

import socket

import pytest

SERVERS: dict[str, int] = {
    "redis": 6379,
    "postgresql": 5432,
    "mysql": 3306,
    "etcd": 2379,
    "zookeeper": 2181,
    "rabbitmq": 5672,
    "mqtt": 1883,
    "nats": 4222,
    "memcached": 11211,
}
"""Server name → loopback port, as scripts/start-services.sh starts them."""

CONNECTION = {
    "redis": "127.0.0.1:6379",
    "postgresql": "postgres://postgres@127.0.0.1:5432/test",
    "mysql": "root:@tcp(127.0.0.1:3306)/test",
    "etcd": "127.0.0.1:2379",
    "zookeeper": "127.0.0.1:2181",
}


def is_up(port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


def require(*servers: str) -> None:
    """Fail the test when a server it needs is not reachable: a missing server is a failure."""
    for name in servers:
        port = SERVERS[name]
        if not is_up(port):
            pytest.fail(
                f"server {name} is not reachable on 127.0.0.1:{port}; "
                "run scripts/start-services.sh (make test does)",
                pytrace=False,
            )
