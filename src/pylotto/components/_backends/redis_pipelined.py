"""A pipelined Redis client for request/response components (state, lock, sequencer).

Every call is written to one shared connection at once, without waiting for the replies of
the calls before it; the replies come back in the order the commands went out and each goes to
its caller. redis-py's asyncio client instead lends a pooled connection per command and waits
for its reply before that connection serves another (and has no automatic pipelining): on this
hot path it cost ≈ 80 µs of sidecar CPU per GET, a call here ≈ 50 µs alone and ≈ 13 µs when
many are in flight, since one socket read then answers many calls (docs/performance.md).
The wire format is hiredis's (the C RESP parser redis-py uses too): ``pack_command`` writes a
command, ``Reader`` parses the replies.

Components that hold a connection for themselves — pub/sub, configuration subscriptions,
blocking reads — keep redis-py (:mod:`pylotto.components._backends.redis_client`).

Reliability, the same rules as the pooled client:

- every call is bounded by ``timeout``: when the oldest call on a connection gets no reply in
  time, the connection is closed (the server or the link is silent) and every call waiting on
  it fails with Unavailable; the next call reconnects;
- a connection the server closed or the network reset fails the calls waiting on it with
  Unavailable; the next call reconnects (so the first call after an outage succeeds);
- a command is never sent twice: a call that failed may or may not have been applied;
- a caller that is cancelled (its deadline) stops waiting; its reply is read and dropped, so
  the connection stays in step for the others.

With ``failover: true`` each connection goes to the master the sentinels name, checked with
``ROLE``; a ``READONLY`` reply (the server was demoted) drops the connection, so the next call
asks the sentinels again. With ``waitReplicas`` a write (``write=True``) is followed on the same
connection by ``WAIT``, and fails unless enough replicas confirmed it
(:mod:`pylotto.components._backends.redis_topology`).

A Lua script goes out as ``EVALSHA``; if the server does not have it (``NOSCRIPT``, after a
restart or ``SCRIPT FLUSH``) the same call sends ``EVAL``, which runs and caches it.
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, cast

import hiredis

from pylotto.components._backends.redis_client import RedisSettings, map_error

Command = Sequence[str | bytes | int | float]


class RedisReplyError(Exception):
    """An error reply (``-ERR ...``, ``-WRONGTYPE ...``): the command reached the server."""


class NoScript(RedisReplyError):
    """``NOSCRIPT``: the server does not know a script's SHA1."""


def reply_error(reply: hiredis.ReplyError) -> RedisReplyError:
    message = str(reply)
    return NoScript(message) if message.startswith("NOSCRIPT") else RedisReplyError(message)


class _Connection(asyncio.Protocol):
    """One TCP (or TLS) connection; ``send`` queues a command and returns the future of its
    reply. The first command of a turn of the event loop is written at once, the others of
    that turn together at its end. A watchdog closes the connection when the oldest call waits
    longer than ``timeout`` (replies come in order, so it is the first to be late): one timer
    per connection, none per call. ``lost`` is set once the connection can no longer be used."""

    def __init__(self, loop: asyncio.AbstractEventLoop, timeout: float) -> None:
        self._loop = loop
        self._timeout = timeout
        self._reader = hiredis.Reader()
        self._waiting: collections.deque[tuple[float, asyncio.Future[Any]]] = \
            collections.deque()
        """(deadline, future) per call sent and not answered yet, in the order sent."""
        self._outgoing: list[bytes] = []
        self._batching = False
        """A command went out in this turn of the loop: the next ones wait for ``_flush``."""
        self._watchdog: asyncio.TimerHandle | None = None
        self._transport: asyncio.Transport | None = None
        self.lost: str | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)

    def data_received(self, data: bytes) -> None:
        reader, waiting = self._reader, self._waiting
        reader.feed(data)
        try:
            while (reply := reader.gets()) is not False:
                future = waiting.popleft()[1]
                if future.done():  # its caller stopped waiting
                    continue
                if isinstance(reply, hiredis.ReplyError):
                    future.set_exception(reply_error(reply))
                else:
                    future.set_result(reply)
        except (hiredis.ProtocolError, IndexError) as exc:  # garbage, or a reply nobody asked for
            self.close(f"protocol error: {exc!r}")

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(f"connection lost: {exc}" if exc else "connection closed by the server")

    def send(self, command: Command) -> asyncio.Future[Any]:
        if self.lost is not None or self._transport is None:
            raise ConnectionError(self.lost or "not connected")
        loop = self._loop
        future = loop.create_future()
        # hiredis's stub types the argument as a 1-tuple; any length is accepted
        packed = hiredis.pack_command(tuple(command))  # type: ignore[arg-type]
        if self._batching:
            self._outgoing.append(packed)
        else:  # the first command of this turn of the loop goes at once, the others together
            self._transport.write(packed)
            self._batching = True
            loop.call_soon(self._flush)
        self._waiting.append((loop.time() + self._timeout, future))
        if self._watchdog is None:
            self._watchdog = loop.call_at(self._waiting[0][0], self._check)
        return future

    def _flush(self) -> None:
        self._batching = False
        outgoing = self._outgoing
        if outgoing and self.lost is None and self._transport is not None:
            self._transport.write(outgoing[0] if len(outgoing) == 1 else b"".join(outgoing))
        outgoing.clear()

    def _check(self) -> None:
        self._watchdog = None
        if not self._waiting:
            return
        deadline = self._waiting[0][0]
        if deadline <= self._loop.time():
            self.close(f"no reply within {self._timeout:g} s", TimeoutError)
        else:
            self._watchdog = self._loop.call_at(deadline, self._check)

    def close(self, why: str, error: type[Exception] = ConnectionError) -> None:
        self._fail(why, error)
        if self._transport is not None:
            self._transport.abort()

    def _fail(self, why: str, error: type[Exception] = ConnectionError) -> None:
        if self.lost is None:
            self.lost = why
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        self._outgoing.clear()
        while self._waiting:
            future = self._waiting.popleft()[1]
            if not future.done():
                future.set_exception(error(why))


class PipelinedRedisClient:
    """What a request/response Redis component calls: ``await execute("INCR", key)``,
    ``script(source)``; one shared connection, opened on the first call and again after it
    is lost. ``what`` names the component in every message (``"state store orders"``)."""

    def __init__(self, settings: RedisSettings, what: str) -> None:
        self.settings = settings
        self.what = what
        self.timeout = settings.timeout
        self._connection: _Connection | None = None
        self._connecting = asyncio.Lock()
        self._closed = False

    async def open(self) -> None:
        """Connect and check the server answers (Unavailable if it does not)."""
        self._closed = False
        await self.ping()

    async def close(self) -> None:
        self._closed = True
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close("the client was closed")

    async def ping(self) -> None:
        await self.execute("PING")

    async def execute(self, *command: str | bytes | int | float, write: bool = False) -> Any:
        """One command's reply, as hiredis gives it (bytes, int, list, None); ``write``: a
        write, confirmed by ``waitReplicas`` replicas when that is set."""
        return await self._run(command, None, write)

    def script(self, source: str, write: bool = False) -> Callable[..., Awaitable[Any]]:
        """A Lua script: ``await script(keys=[...], args=[...])``."""
        sha = hashlib.sha1(source.encode()).hexdigest()

        def run(keys: Sequence[Any], args: Sequence[Any]) -> Awaitable[Any]:
            counted = (len(keys), *keys, *args)
            return self._run(("EVALSHA", sha, *counted), ("EVAL", source, *counted), write)

        return run

    def slot_of(self, key: str) -> int | None:
        """None: one server holds every key (no grouping by slot)."""
        return None

    async def scan(self, pattern: str, count: int) -> AsyncIterator[bytes]:
        """Every key matching ``pattern`` (``SCAN`` until the cursor comes back to 0)."""
        cursor: bytes | str = "0"
        while True:
            cursor, batch = await self.execute("SCAN", cursor, "MATCH", pattern, "COUNT", count)
            for key in batch:
                yield key
            if cursor in (b"0", "0"):
                return

    async def _run(self, command: Command, if_no_script: Command | None,
                   write: bool = False) -> Any:
        wait = self.settings.wait_replicas if write else 0
        connection: _Connection | None = None
        try:
            connection = self._connection
            if connection is None or connection.lost is not None:
                connection = await self._connect()
            try:
                reply = await self._send(connection, command, wait)
            except NoScript:
                if if_no_script is None:
                    raise
                reply = await self._send(connection, if_no_script, wait)
            return reply
        except Exception as exc:
            if (connection is not None and isinstance(exc, RedisReplyError)
                    and str(exc).startswith("READONLY")):
                connection.close("the server is a replica now (READONLY)")
            raise map_error(exc, self.what) from exc

    async def _send(self, connection: _Connection, command: Command, wait: int) -> Any:
        if not wait:
            return await connection.send(command)
        # WAIT on the same connection, right behind the write: it returns once that many
        # replicas have every write this connection made so far (this one included)
        reply_future = connection.send(command)
        waited = connection.send(("WAIT", wait, self._wait_ms))
        try:
            reply = await reply_future
        finally:
            acked = await waited
        if int(acked) < wait:
            from pylotto.components._backends.redis_topology import too_few

            raise too_few(self.what, acked, wait)
        return reply

    @property
    def _wait_ms(self) -> int:
        from pylotto.components._backends.redis_topology import wait_ms

        return wait_ms(self.settings)

    async def _connect(self) -> _Connection:
        async with asyncio.timeout(self.timeout), self._connecting:  # one attempt for all
            current = self._connection
            if current is not None and current.lost is None:
                return current
            if self._closed:
                raise ConnectionError("the client was closed")
            loop = asyncio.get_running_loop()
            host, port = await self._address()
            context = ssl.create_default_context() if self.settings.enable_tls else None
            _, connection = await loop.create_connection(
                lambda: _Connection(loop, self.timeout), host, port, ssl=context,
                server_hostname=host if context else None)
            try:
                for command in self._handshake():
                    await connection.send(command)
                if self.settings.topology == "sentinel":
                    role = await connection.send(("ROLE",))
                    if not role or role[0] != b"master":
                        raise ConnectionError(f"{host}:{port}, the master the sentinels name, "
                                              "is not a master (yet)")
            except BaseException:
                connection.close("handshake failed")
                raise
            self._connection = connection
            return connection

    async def _address(self) -> tuple[str, int]:
        if self.settings.topology == "sentinel":
            from pylotto.components._backends.redis_topology import sentinel_master

            return await sentinel_master(self.settings, self.timeout)
        return self.settings.hosts[0]

    def _handshake(self) -> list[Command]:
        settings = self.settings
        commands: list[Command] = []
        if settings.redis_password:
            commands.append(("AUTH", settings.redis_username, settings.redis_password)
                            if settings.redis_username else ("AUTH", settings.redis_password))
        if settings.redis_db:
            commands.append(("SELECT", settings.redis_db))
        return commands
