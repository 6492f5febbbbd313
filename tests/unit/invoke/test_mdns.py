"""mDNS name resolution (Dapr's self-hosted default) on the loopback: sidecars announce their
app id, find the others', and drop out when they stop."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest

from pylotto.core.errors import ConfigError
from pylotto.resolution.mdns import MdnsResolver


async def test_sidecars_find_each_other_and_leave_when_they_stop() -> None:
    app = f"orders-{uuid.uuid4().hex[:8]}"
    one, two, looker = MdnsResolver({}), MdnsResolver({}), MdnsResolver(
        {"resolveTimeout": "5s"})
    await one.start(app, "127.0.0.1:41001")
    await two.start(app, "127.0.0.1:41002")
    await looker.start("", "")
    try:
        deadline = time.monotonic() + 10
        while (found := await looker.resolve(app)) != ["127.0.0.1:41001", "127.0.0.1:41002"]:
            assert time.monotonic() < deadline, found
            await asyncio.sleep(0.1)
        await two.stop()
        deadline = time.monotonic() + 10
        while (found := await looker.resolve(app)) != ["127.0.0.1:41001"]:
            assert time.monotonic() < deadline, found
            await asyncio.sleep(0.1)
    finally:
        await one.stop()
        await looker.stop()


async def test_an_unknown_app_resolves_to_nothing_after_the_timeout() -> None:
    resolver = MdnsResolver({"resolveTimeout": "300ms"})
    await resolver.start("", "")
    try:
        started = time.monotonic()
        assert await resolver.resolve(f"nobody-{uuid.uuid4().hex[:8]}") == []
        assert 0.25 < time.monotonic() - started < 2
    finally:
        await resolver.stop()


def test_interfaces_are_loopback_or_all() -> None:
    with pytest.raises(ConfigError):
        MdnsResolver({"interfaces": "eth0"})


async def test_without_an_app_id_mdns_is_joined_at_the_first_lookup() -> None:
    """Nothing to announce: the multicast socket (and zeroconf) wait for a lookup; after the
    stop a lookup finds nothing at once and joins nothing."""
    resolver = MdnsResolver({"resolveTimeout": "100ms"})
    await resolver.start("", "")
    try:
        assert resolver._zc is None
        assert await resolver.resolve(f"nobody-{uuid.uuid4().hex[:8]}") == []
        assert resolver._zc is not None
    finally:
        await resolver.stop()
    assert resolver._zc is None
    started = time.monotonic()
    assert await resolver.resolve("anyone") == []
    assert resolver._zc is None and time.monotonic() - started < 0.05
