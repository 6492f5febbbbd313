"""Connection loss and silence: every Redis component answers Unavailable in time, never hangs,
and works again once the server is reachable — through a TcpProxy the test cuts (connections
reset) or a proxy that goes silent (connections open, nothing passes)."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest

from pylotto.components.configuration.base import ConfigurationItem, ItemsQuery
from pylotto.components.state.base import Consistency, SetRequest
from pylotto.core.errors import Unavailable
from tests.integration.redis.conftest import Builder, KeyMaker, Recorder
from tests.support.tcp_proxy import TcpProxy

WAIT = 10.0


@pytest.fixture
def proxy() -> Iterator[TcpProxy]:
    with TcpProxy("127.0.0.1", 6379) as running:
        yield running
        running.cut()
        time.sleep(0.2)  # its connections' tasks end before its loop stops


def via(port: int, timeout: str = "2s") -> dict[str, str]:
    return {"redisHost": f"127.0.0.1:{port}", "timeout": timeout}


class SilentProxy:
    """Forwards to Redis until ``freeze()``; then connections stay open but no byte passes
    either way (a dead network link) until ``thaw()``."""

    def __init__(self) -> None:
        self.flowing = asyncio.Event()
        self.flowing.set()
        self.port = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    async def __aenter__(self) -> SilentProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def freeze(self) -> None:
        self.flowing.clear()

    def thaw(self) -> None:
        self.flowing.set()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", 6379)
        self._writers.update((writer, up_writer))

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    await self.flowing.wait()  # frozen: hold the bytes back
                    dst.write(data)
                    await dst.drain()
            except (OSError, asyncio.CancelledError):
                pass
            finally:
                dst.close()

        for task in (asyncio.create_task(pipe(reader, up_writer)),
                     asyncio.create_task(pipe(up_reader, writer))):
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)


def item(key: str, content: str) -> ConfigurationItem:
    return ConfigurationItem(key, content, "default", "default")


def own(prefix: str) -> dict[str, str]:
    """A configuration store whose items are the test's own keys (Dapr's layout: plain keys)."""
    return {"keyPrefix": f"{prefix}:"}


async def until(condition: Any, what: str, seconds: float = WAIT) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.05)


async def test_state_store_fails_fast_while_cut_and_reconnects(
    build: Builder, key: KeyMaker, proxy: TcpProxy
) -> None:
    k = key("k")
    async with build("state", via(proxy.port)) as store:
        await store.set(SetRequest(k, b"v1"))
        proxy.cut()
        started = time.monotonic()
        with pytest.raises(Unavailable, match="state store rd: redis unreachable"):
            await store.get(k, Consistency.UNSPECIFIED, {})
        with pytest.raises(Unavailable):
            await store.set(SetRequest(k, b"lost"))
        with pytest.raises(Unavailable):
            await store.bulk_get([k], {})
        with pytest.raises(Unavailable):
            await store.ping()
        assert time.monotonic() - started < 6
        proxy.restore()
        await store.set(SetRequest(k, b"v2"))  # the very first call after the outage
        got = await store.get(k, Consistency.UNSPECIFIED, {})
        assert got is not None and got.value == b"v2"
        await store.ping()


async def test_lock_sequencer_and_configuration_reconnect(
    build: Builder, key: KeyMaker, prefix: str, proxy: TcpProxy
) -> None:
    meta = via(proxy.port)
    query = ItemsQuery(f"{prefix}-app", "default", "default")
    async with build("lock", meta) as locks, build("sequencer", meta) as sequencer, \
            build("configuration", {**meta, **own(prefix)}) as config:
        assert await locks.try_lock(key("r"), "me", 30)
        assert await sequencer.next_id(key("s"), {}) == 1
        await config.set(query.app_id, [item("k", "v")], {})
        proxy.cut()
        started = time.monotonic()
        with pytest.raises(Unavailable, match="lock store rd"):
            await locks.try_lock(key("r2"), "me", 30)
        with pytest.raises(Unavailable, match="lock store rd"):
            await locks.unlock(key("r"), "me")  # a Lua script
        with pytest.raises(Unavailable, match="sequencer store rd"):
            await sequencer.next_id(key("s"), {})
        with pytest.raises(Unavailable, match="sequencer store rd"):
            await sequencer.ensure_bigger_than(key("s"), 10)
        with pytest.raises(Unavailable, match="configuration store rd"):
            await config.get(query)
        with pytest.raises(Unavailable, match="configuration store rd"):
            await config.subscribe(query, Recorder(WAIT))
        assert time.monotonic() - started < 12
        proxy.restore()
        assert not await locks.try_lock(key("r"), "other", 30)
        assert await sequencer.next_id(key("s"), {}) == 2
        assert [i.content for i in await config.get(query)] == ["v"]


async def test_connections_reset_while_idle_are_replaced_before_use(
    build: Builder, key: KeyMaker, proxy: TcpProxy
) -> None:
    """No call during the outage: the connections the network reset are noticed, so the very
    first calls after it succeed — the pipelined one (sequencer) and the pooled ones
    (configuration)."""
    query = ItemsQuery(f"{key('app')}", "default", "default")
    async with build("sequencer", via(proxy.port)) as sequencer, \
            build("configuration", {**via(proxy.port), **own(key("cfg"))}) as config:
        ids = await asyncio.gather(*(sequencer.next_id(key("s"), {}) for _ in range(8)))
        assert sorted(ids) == list(range(1, 9))
        await asyncio.gather(*(config.get(query) for _ in range(8)))
        idle = config.client.redis.connection_pool._available_connections
        assert len(idle) > 1  # several pooled connections, all reset by the cut
        proxy.cut()
        await asyncio.sleep(0.2)
        proxy.restore()
        ids = await asyncio.gather(*(sequencer.next_id(key("s"), {}) for _ in range(8)))
        assert sorted(ids) == list(range(9, 17))
        assert await asyncio.gather(*(config.get(query) for _ in range(8))) == [[]] * 8


async def test_silent_server_times_out(build: Builder) -> None:
    """A server that accepts the connection and never answers: Unavailable after the timeout."""
    silent = socket.create_server(("127.0.0.1", 0))
    port = silent.getsockname()[1]
    try:
        started = time.monotonic()
        with pytest.raises(Unavailable, match="did not answer in time"):
            async with build("state", via(port, "1s")):
                pass
        assert time.monotonic() - started < 4
    finally:
        silent.close()


async def test_unreachable_server_at_init_is_unavailable(build: Builder) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(Unavailable, match="lock store rd: redis unreachable"):
        async with build("lock", via(port)):
            pass


async def test_a_call_on_a_connection_gone_silent_times_out(
    build: Builder, key: KeyMaker
) -> None:
    async with SilentProxy() as silent, build("state", via(silent.port, "1s")) as store:
        await store.set(SetRequest(key("k"), b"v"))
        silent.freeze()
        started = time.monotonic()
        with pytest.raises(Unavailable, match="did not answer in time"):
            await store.get(key("k"), Consistency.UNSPECIFIED, {})
        assert time.monotonic() - started < 3
        silent.thaw()
        got = await store.get(key("k"), Consistency.UNSPECIFIED, {})
        assert got is not None and got.value == b"v"


async def test_subscription_reconnects_and_catches_up(
    build: Builder, prefix: str, proxy: TcpProxy
) -> None:
    """Changes made while the pub/sub connection was down are reported once, with their
    current value, when it is back; then changes flow again, none twice."""
    app = f"{prefix}-app"
    query = ItemsQuery(app, "default", "default")
    async with build("configuration", {**via(proxy.port, "1s"), **own(prefix)}) as store, \
            build("configuration", own(prefix), name="direct") as writer:
        await writer.set(app, [item("gone", "0"), item("same", "s"), item("changed", "1")], {})
        recorder = Recorder(WAIT)
        subscription = await store.subscribe(query, recorder)
        await writer.set(app, [item("a", "1")], {})
        assert await recorder.next() == [("a", "1")]

        proxy.cut()
        await until(lambda: not store.listening.is_set(), "the lost connection went unnoticed")
        await writer.delete(ItemsQuery(app, "default", "default", ("gone",)))
        await writer.set(app, [item("changed", "2")], {})
        await writer.set(app, [item("changed", "3")], {})
        await writer.set(app, [item("new", "n")], {})
        proxy.restore()
        await asyncio.wait_for(store.listening.wait(), WAIT)
        assert sorted(await recorder.next()) == [("changed", "3"), ("gone", ""), ("new", "n")]

        await writer.set(app, [item("after", "x")], {})
        assert await recorder.next() == [("after", "x")]
        await asyncio.sleep(0.3)
        assert recorder.calls.empty()
        await subscription.close()


async def test_a_silent_subscription_connection_is_noticed_and_reopened(
    build: Builder, prefix: str
) -> None:
    """The pub/sub connection is pinged when quiet; no answer within the timeout: reopened."""
    app = f"{prefix}-app"
    query = ItemsQuery(app, "default", "default")
    async with SilentProxy() as silent, \
            build("configuration", {**via(silent.port, "1s"), **own(prefix)}) as store, \
            build("configuration", own(prefix), name="direct") as writer:
        recorder = Recorder(WAIT)
        await store.subscribe(query, recorder)
        silent.freeze()
        started = time.monotonic()
        await until(lambda: not store.listening.is_set(), "the silent connection went unnoticed")
        assert time.monotonic() - started < 4  # quiet for 1s, then 1s for the PING's answer
        await writer.set(app, [item("k", "while silent")], {})
        silent.thaw()
        await asyncio.wait_for(store.listening.wait(), WAIT)
        assert await recorder.next() == [("k", "while silent")]  # from the catch-up
        await writer.set(app, [item("k", "after")], {})
        assert await recorder.next() == [("k", "after")]


async def test_subscribe_while_the_listener_reconnects_waits_for_it(
    build: Builder, prefix: str, proxy: TcpProxy
) -> None:
    app = f"{prefix}-app"
    async with build("configuration", {**via(proxy.port, "3s"), **own(prefix)}) as store, \
            build("configuration", own(prefix), name="direct") as writer:
        first = Recorder(WAIT)
        await store.subscribe(ItemsQuery(app, "default", "default"), first)
        proxy.cut()
        await until(lambda: not store.listening.is_set(), "the lost connection went unnoticed")
        proxy.restore()  # the listener is still waiting out its back-off
        second = Recorder(WAIT)
        await store.subscribe(ItemsQuery(app, "default", "default", ("k",)), second)
        assert store.listening.is_set()
        await writer.set(app, [item("k", "v")], {})
        assert await second.next() == [("k", "v")]
        assert await first.next() == [("k", "v")]
