"""Connection loss and silence: every PostgreSQL component answers Unavailable in time, never
hangs, and works again once the server is reachable (through a TcpProxy the test cuts)."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator, Sequence

import pytest

from pylotto.components.configuration.base import ConfigurationItem, ItemsQuery
from pylotto.components.state.base import Consistency, SetRequest
from pylotto.core.errors import Unavailable
from tests.integration.postgresql.conftest import Builder
from tests.support.tcp_proxy import TcpProxy


@pytest.fixture
def proxy() -> Iterator[TcpProxy]:
    with TcpProxy("127.0.0.1", 5432) as running:
        yield running


def via(proxy: TcpProxy) -> str:
    return f"postgres://postgres@127.0.0.1:{proxy.port}/test"


async def test_state_store_fails_fast_while_cut_and_reconnects(
    build: Builder, proxy: TcpProxy
) -> None:
    async with build("state", {"connectionString": via(proxy), "timeout": "3s"}) as store:
        await store.set(SetRequest("k", b"v1"))
        proxy.cut()
        started = time.monotonic()
        with pytest.raises(Unavailable, match="state store pg"):
            await store.get("k", Consistency.UNSPECIFIED, {})
        with pytest.raises(Unavailable):
            await store.ping()
        assert time.monotonic() - started < 7
        proxy.restore()
        await store.set(SetRequest("k", b"v2"))
        got = await store.get("k", Consistency.UNSPECIFIED, {})
        assert got is not None and got.value == b"v2"


async def test_lock_and_sequencer_reconnect(build: Builder, proxy: TcpProxy) -> None:
    meta = {"connectionString": via(proxy), "timeout": "3s"}
    async with build("lock", meta) as locks, build("sequencer", meta) as sequencer:
        assert await locks.try_lock("r", "me", 30)
        assert await sequencer.next_id("k", {}) == 1
        proxy.cut()
        with pytest.raises(Unavailable, match="lock store pg"):
            await locks.try_lock("r2", "me", 30)
        with pytest.raises(Unavailable, match="sequencer store pg"):
            await sequencer.next_id("k", {})
        proxy.restore()
        assert not await locks.try_lock("r", "other", 30)
        assert await sequencer.next_id("k", {}) == 2


async def test_silent_server_times_out(build: Builder) -> None:
    """A server that accepts the connection and never answers: Unavailable after the timeout."""
    silent = socket.create_server(("127.0.0.1", 0))
    port = silent.getsockname()[1]
    try:
        started = time.monotonic()
        with pytest.raises(Unavailable, match=r"did not answer in time|unreachable"):
            async with build("state", {"connectionString": f"postgres://postgres@127.0.0.1:{port}/test",
                                       "timeout": "1s"}):
                pass
        assert time.monotonic() - started < 4
    finally:
        silent.close()


async def test_unreachable_server_at_init_is_unavailable(build: Builder) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(Unavailable, match="unreachable"):
        async with build("lock", {"connectionString": f"host=127.0.0.1 port={port} "
                                                      "user=postgres dbname=test"}):
            pass


async def test_configuration_listener_reconnects(build: Builder, proxy: TcpProxy) -> None:
    """The listening connection is reopened after a cut; later changes reach the subscriber."""
    async with build("configuration", {"connectionString": via(proxy), "timeout": "1s"}) as store, \
            build("configuration", {}) as writer:
        changes: asyncio.Queue[list[ConfigurationItem]] = asyncio.Queue()

        def handler(items: Sequence[ConfigurationItem]) -> None:
            changes.put_nowait(list(items))

        query = ItemsQuery("app", "default", "default")
        subscription = await store.subscribe(query, handler)
        await writer.set("app", [ConfigurationItem("a", "1", "default", "default")], {})
        first = await asyncio.wait_for(changes.get(), 5)
        assert [(i.key, i.content) for i in first] == [("a", "1")]

        proxy.cut()
        deadline = time.monotonic() + 5  # the loss is noticed at once or by the periodic check
        while store.listening.is_set():
            assert time.monotonic() < deadline, "the lost listening connection went unnoticed"
            await asyncio.sleep(0.05)
        proxy.restore()
        await asyncio.wait_for(store.listening.wait(), 10)
        await writer.set("app", [ConfigurationItem("b", "2", "default", "default")], {})
        second = await asyncio.wait_for(changes.get(), 5)
        assert [(i.key, i.content) for i in second] == [("b", "2")]
        await subscription.close()
