"""Name resolvers that need no server: static tables and DNS."""

from __future__ import annotations

import pytest

from pylotto.core.errors import ConfigError
from pylotto.resolution.dns import DnsResolver
from pylotto.resolution.static import StaticResolver


async def test_static_table() -> None:
    resolver = StaticResolver({"apps": {"a": ["127.0.0.1:1", "127.0.0.1:2"], "b": "h:3"}})
    assert await resolver.resolve("a") == ["127.0.0.1:1", "127.0.0.1:2"]
    assert await resolver.resolve("b") == ["h:3"]
    assert await resolver.resolve("c") == []
    with pytest.raises(ConfigError, match="not host:port"):
        StaticResolver({"apps": {"a": ["nowhere"]}})


async def test_dns_names_resolve_to_every_address() -> None:
    resolver = DnsResolver({"template": "{app_id}", "port": "35001"})
    assert await resolver.resolve("localhost") in (["127.0.0.1:35001"],
                                                   ["127.0.0.1:35001", "[::1]:35001"],
                                                   ["[::1]:35001", "127.0.0.1:35001"])
    assert await resolver.resolve("no-such-app.invalid") == []
    with pytest.raises(ConfigError, match="app_id"):
        DnsResolver({"template": "fixed-name"})
