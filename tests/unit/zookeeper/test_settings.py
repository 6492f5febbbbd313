"""zookeeperHosts as Layotto writes it: hosts without a port are on 2181, ``;`` or ``,``."""

from __future__ import annotations

import pytest

from pylotto.components._backends.zookeeper_client import ZookeeperSettings
from pylotto.core.errors import ConfigError
from pylotto.core.metadata import decode


def hosts(value: str) -> str:
    return decode(ZookeeperSettings, {"zookeeperHosts": value}, component="zk").zookeeper_hosts


@pytest.mark.parametrize(("given", "used"), [
    ("127.0.0.1", "127.0.0.1:2181"),
    ("127.0.0.1:2182", "127.0.0.1:2182"),
    ("127.0.0.1;10.0.0.2:2182", "127.0.0.1:2181,10.0.0.2:2182"),  # Layotto's separator
    ("a, b:1", "a:2181,b:1"),
    ("[::1]", "[::1]:2181"),
    ("[::1]:2182", "[::1]:2182"),
])
def test_a_host_without_a_port_is_on_2181(given: str, used: str) -> None:
    assert hosts(given) == used


def test_daprs_servers_key_gets_the_same_default() -> None:
    settings = decode(ZookeeperSettings, {"servers": "zk1"}, component="zk")
    assert settings.zookeeper_hosts == "zk1:2181"


@pytest.mark.parametrize("given", ["a:x", "[::1]x", ":", ";", ""])
def test_malformed_hosts_are_refused(given: str) -> None:
    with pytest.raises(ConfigError, match="zookeeperHosts"):
        hosts(given)
