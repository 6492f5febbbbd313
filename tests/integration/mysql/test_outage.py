"""Connection loss and silence: every MySQL component answers Unavailable in time, never hangs,
and works again once the server is reachable (through a TcpProxy the test cuts)."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator

import pytest

from pylotto.components.state.base import Consistency, SetRequest
from pylotto.core.errors import Unavailable
from tests.integration.mysql.conftest import Builder, connect, sql
from tests.integration.mysql.test_components import value_of
from tests.support.tcp_proxy import TcpProxy

ANY = Consistency.UNSPECIFIED


@pytest.fixture
def proxy() -> Iterator[TcpProxy]:
    with TcpProxy("127.0.0.1", 3306) as running:
        yield running


def via(port: int) -> str:
    return f"root:@tcp(127.0.0.1:{port})/test"


async def test_state_store_fails_fast_while_cut_and_reconnects(
    build: Builder, proxy: TcpProxy
) -> None:
    async with build("state", {"connectionString": via(proxy.port), "timeout": "3s"}) as store:
        await store.set(SetRequest("k", b"v1"))
        proxy.cut()
        started = time.monotonic()
        with pytest.raises(Unavailable, match="state store my"):
            await store.get("k", ANY, {})
        with pytest.raises(Unavailable):
            await store.set(SetRequest("k", b"lost"))
        with pytest.raises(Unavailable):
            await store.ping()
        assert time.monotonic() - started < 7
        proxy.restore()
        await store.set(SetRequest("k", b"v2"))
        assert await value_of(store, "k") == b"v2"
        await store.ping()


async def test_sequencer_fails_fast_while_cut_and_reconnects(
    build: Builder, proxy: TcpProxy
) -> None:
    async with build("sequencer", {"connectionString": via(proxy.port),
                                   "timeout": "3s"}) as sequencer:
        assert await sequencer.next_id("k", {}) == 1
        proxy.cut()
        with pytest.raises(Unavailable, match="sequencer store my"):
            await sequencer.next_id("k", {})
        with pytest.raises(Unavailable):
            await sequencer.get_segment("k", 10)
        proxy.restore()
        assert await sequencer.next_id("k", {}) == 2


async def test_a_call_stuck_on_a_lock_times_out_and_its_connection_is_dropped(
    build: Builder, prefix: str
) -> None:
    """A statement waiting on another client's row lock gives Unavailable after the timeout;
    the server gives up on it too (the write never lands, even once the lock is free), and the
    connection it ran on (its answer still pending) is never used again."""
    async with build("state", {"timeout": "1s", "maxConns": "1"}) as store:
        await store.set(SetRequest("k", b"v1"))
        blocker = connect()
        try:
            with blocker.cursor() as cursor:
                cursor.execute("BEGIN")
                cursor.execute(f"SELECT * FROM `{prefix}_state` WHERE id = 'k' FOR UPDATE")
                started = time.monotonic()
                with pytest.raises(Unavailable, match="did not answer in time"):
                    await store.set(SetRequest("k", b"v2"))
                assert time.monotonic() - started < 2.5
                await asyncio.sleep(1.5)  # the lock outlives the server's own limit
                cursor.execute("ROLLBACK")
        finally:
            blocker.close()
        assert await value_of(store, "k") == b"v1"
        await store.set(SetRequest("k", b"v3"))
        assert await value_of(store, "k") == b"v3"


async def test_connections_killed_by_the_server_are_replaced(build: Builder) -> None:
    async with build("state", {"maxConns": "1"}) as store:
        await store.set(SetRequest("k", b"v"))
        ((connection_id,),) = await store.client.fetchall("SELECT CONNECTION_ID()")
        sql(f"KILL CONNECTION {int(connection_id)}")
        await asyncio.sleep(0.3)
        assert await value_of(store, "k") == b"v"
        ((replacement,),) = await store.client.fetchall("SELECT CONNECTION_ID()")
        assert replacement != connection_id


async def test_silent_server_times_out(build: Builder) -> None:
    """A server that accepts the connection and never answers: Unavailable after the timeout."""
    silent = socket.create_server(("127.0.0.1", 0))
    port = silent.getsockname()[1]
    try:
        started = time.monotonic()
        with pytest.raises(Unavailable, match=r"did not answer in time|unreachable"):
            async with build("state", {"connectionString": via(port), "timeout": "1s"}):
                pass
        assert time.monotonic() - started < 4
    finally:
        silent.close()


async def test_unreachable_server_at_init_is_unavailable(build: Builder) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(Unavailable, match="unreachable"):
        async with build("sequencer", {"connectionString": via(port)}):
            pass
