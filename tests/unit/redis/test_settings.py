"""The shared settings of the Redis state, lock and sequencer stores, without a server (what
the stores do on one: tests/integration/redis/)."""

from __future__ import annotations

import pytest

from pylotto.components._backends.redis_client import RedisClient, RedisSettings, host_port
from pylotto.components.state.redis import RedisStateSettings
from pylotto.core.errors import ConfigError
from pylotto.core.metadata import decode


def test_settings_take_dapr_names_and_become_connection_options() -> None:
    settings = decode(RedisSettings, {
        "redisHost": "cache.example:6380", "redisUsername": "u", "redisPassword": "p",
        "redisDB": "2", "enableTLS": "true", "poolSize": "5", "timeout": "500ms",
    }, component="state.rd")
    assert settings.connections == 5
    assert RedisClient(settings, "state store rd").connection_options() == {
        "host": "cache.example", "port": 6380, "db": 2, "username": "u", "password": "p",
        "ssl": True, "socket_timeout": 0.5, "socket_connect_timeout": 0.5,
        "socket_keepalive": True,
    }
    defaults = decode(RedisSettings, {"redisHost": "cache"}, component="state.rd")
    assert (defaults.timeout, defaults.redis_db, defaults.enable_tls) == (10.0, 0, False)
    both = decode(RedisSettings, {"redisHost": "cache", "poolSize": "5", "maxConns": "7"},
                  component="state.rd")
    assert both.connections == 7


def test_host_port_forms() -> None:
    assert host_port("cache") == ("cache", 6379)
    assert host_port("10.0.0.1:7000") == ("10.0.0.1", 7000)
    assert host_port("[::1]:6380") == ("::1", 6380)


@pytest.mark.parametrize("metadata", [{}, {"redisHost": ""}, {"redisHost": "cache:port"},
                                      {"redisHost": "cache", "redisDB": "-1"},
                                      {"redisHost": "cache", "timeout": "soon"}])
def test_bad_settings_are_config_errors(metadata: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match=r"component state\.rd"):
        decode(RedisStateSettings, metadata, component="state.rd")



def test_sentinel_and_cluster_settings() -> None:
    sentinel = decode(RedisSettings, {
        "redisHost": " s1:26379, s2 ,[::1]:26380", "failover": "true",
        "sentinelMasterName": "mymaster", "sentinelPassword": "p"}, component="state.rd")
    assert sentinel.topology == "sentinel"
    assert sentinel.hosts == [("s1", 26379), ("s2", 6379), ("::1", 26380)]
    cluster = decode(RedisSettings, {"redisHost": "n1:7000,n2:7001", "redisType": "CLUSTER"},
                     component="state.rd")
    assert (cluster.topology, cluster.hosts) == ("cluster", [("n1", 7000), ("n2", 7001)])
    assert decode(RedisSettings, {"redisHost": "cache"}, component="state.rd").topology == "node"


@pytest.mark.parametrize(("metadata", "message"), [
    ({"failover": "true"}, "needs sentinelMasterName"),
    ({"sentinelMasterName": "m"}, "need failover: true"),
    ({"redisHost": "a:1,b:2"}, "several hosts in redisHost"),
    ({"redisType": "cluster", "redisDB": "1"}, "only database 0"),
    ({"waitReplicas": "-1"}, "waitReplicas"),
    ({"redisType": "cluster", "failover": "true", "sentinelMasterName": "m"},
     "failover: true with redisType: cluster"),
    ({"redisType": "sharded"}, "redisType"),
])
def test_topology_rules_are_config_errors(metadata: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        decode(RedisSettings, {"redisHost": "cache", **metadata}, component="state.rd")
