"""state.memcached without a server: contrib's keys, key mapping, gomemcache's server choice."""

from __future__ import annotations

import zlib

import pytest

from pylotto.components.state.memcached import MemcachedSettings, stored_key
from pylotto.core.errors import ConfigError
from pylotto.core.metadata import decode


def settings(**metadata: str) -> MemcachedSettings:
    return decode(MemcachedSettings, metadata, component="state.mc")


def test_contribs_keys() -> None:
    s = settings(hosts="a:11211, b:11212", maxIdleConnections="5", timeout="250")
    assert s.hosts == "a:11211,b:11212" and s.max_idle_connections == 5 and s.timeout == 0.25
    assert settings(hosts="a:1", timeout="2s").timeout == 2.0
    assert settings(hosts="a:1").timeout == 1.0


def test_hosts_are_required() -> None:
    with pytest.raises(ConfigError, match="hosts"):
        settings()


def test_keys_memcached_takes_are_kept_others_are_hashed() -> None:
    assert stored_key("app||k-ключ") == "app||k-ключ".encode()
    for bad in ("with space", "x" * 251, "line\nfeed", "tab\t"):
        assert stored_key(bad).startswith(b"pylotto-sha256-")
    assert stored_key("with space") != stored_key("with  space")


def test_server_choice_is_gomemcaches_crc32() -> None:
    # gomemcache's ServerList.PickServer: crc32.ChecksumIEEE(key) % len(servers)
    assert zlib.crc32(b"foo") == 0x8C736521
