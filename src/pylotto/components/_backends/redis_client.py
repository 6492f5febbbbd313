"""What every Redis-backed component shares: connection settings, the redis-py asyncio pool,
call timeouts, Lua scripts and the mapping of driver errors to pylotto errors.

Metadata (Dapr's names): ``redisHost`` (``host:port``, required; port 6379 when omitted; a
comma-separated list with ``redisType: cluster`` or ``failover: true``, see
:mod:`pylotto.components._backends.redis_topology`: Sentinel and Cluster),
``redisUsername``, ``redisPassword``, ``redisDB`` (default 0), ``enableTLS`` (default false),
``poolSize`` (connections of the redis-py pool, default 20; ``maxConns``, the name pylotto's SQL
components use, is accepted too and wins; the pipelined client of state, lock and sequencer stores
shares one connection instead, :mod:`pylotto.components._backends.redis_pipelined`), ``timeout`` (a
duration, default 10s: the socket and connect timeout of every call and the limit of the whole call,
waiting for a free pooled connection included).

redis-py is imported only when a client is opened. Commands are never retried by the driver (a
retried script or INCR could apply twice): a call that fails on a broken connection reports
Unavailable. The pool checks a connection before lending it and reconnects one the server
closed or the network reset, so after an outage calls succeed again as soon as the server is
back.

Errors: connection errors, timeouts and the replies of a server that is not ready yet
(:data:`NOT_READY_REPLIES`: ``LOADING`` while a restarted server replays its data, ``READONLY``
after a failover, ...) become :class:`~pylotto.core.errors.Unavailable`, every other Redis error
:class:`~pylotto.core.errors.Internal`; a cancellation stays a cancellation.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from pydantic import Field, field_validator, model_validator

from pylotto.components.base import cancel_requested, unless_cancelled
from pylotto.components.errors import DriverErrors, Rule
from pylotto.core.errors import PylottoError, Unavailable
from pylotto.core.metadata import ComponentSettings, Duration

if TYPE_CHECKING:
    from pylotto.components._backends.redis_topology import ClusterWriter

T = TypeVar("T")
DEFAULT_TIMEOUT = 10.0
POOL_HEADROOM = 8
"""Connections beyond ``poolSize`` for those held outside calls (a configuration store's
subscription): calls themselves never hold more than ``poolSize``."""


class RedisSettings(ComponentSettings):
    """Connection keys shared by every Redis component (mixed into each one's settings)."""

    redis_host: str = Field(alias="redisHost", min_length=1)
    redis_username: str = Field("", alias="redisUsername")
    redis_password: str = Field("", alias="redisPassword")
    redis_db: int = Field(0, alias="redisDB", ge=0)
    enable_tls: bool = Field(False, alias="enableTLS")
    pool_size: int = Field(20, alias="poolSize", ge=1)
    max_conns: int | None = Field(None, alias="maxConns", ge=1)
    timeout: Duration = Field(DEFAULT_TIMEOUT, alias="timeout", gt=0)
    redis_type: Literal["node", "cluster"] = Field("node", alias="redisType")
    failover: bool = Field(False, alias="failover")
    sentinel_master_name: str = Field("", alias="sentinelMasterName")
    sentinel_username: str = Field("", alias="sentinelUsername")
    sentinel_password: str = Field("", alias="sentinelPassword")
    wait_replicas: int = Field(0, alias="waitReplicas", ge=0)
    """pylotto's own: a write is acknowledged only once this many replicas have it (WAIT)."""

    @field_validator("redis_host")
    @classmethod
    def _host_port(cls, value: str) -> str:
        hosts = [host.strip() for host in value.split(",") if host.strip()]
        if not hosts:
            raise ValueError("expected host:port[,host:port...]")
        for host in hosts:
            host_port(host)
        return ",".join(hosts)

    @field_validator("redis_type", mode="before")
    @classmethod
    def _type(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _topology(self) -> RedisSettings:
        """The rules of Sentinel and Cluster metadata (one place, so check-config says them)."""
        several = len(self.hosts) > 1
        if self.failover:
            if not self.sentinel_master_name:
                raise ValueError("failover: true needs sentinelMasterName (the name the "
                                 "sentinels know the master by)")
            if self.redis_type == "cluster":
                raise ValueError("failover: true with redisType: cluster (Dapr's Sentinel "
                                 "client reading from replicas) is not supported: use one")
        elif self.sentinel_master_name or self.sentinel_password or self.sentinel_username:
            raise ValueError("sentinelMasterName, sentinelUsername and sentinelPassword "
                             "need failover: true")
        if self.redis_type == "cluster":
            if self.redis_db:
                raise ValueError("redisType: cluster has only database 0: remove redisDB")
        elif several and not self.failover:
            raise ValueError("several hosts in redisHost need redisType: cluster (cluster "
                             "nodes) or failover: true (sentinels)")
        return self

    @property
    def hosts(self) -> list[tuple[str, int]]:
        """Every ``(host, port)`` of ``redisHost``: the server, the sentinels or cluster nodes."""
        return [host_port(host) for host in self.redis_host.split(",")]

    @property
    def topology(self) -> Literal["node", "sentinel", "cluster"]:
        if self.failover:
            return "sentinel"
        return self.redis_type

    @property
    def connections(self) -> int:
        """The pool's size: ``maxConns`` when given, else ``poolSize``."""
        return self.max_conns if self.max_conns is not None else self.pool_size


def host_port(address: str) -> tuple[str, int]:
    """``("host", port)`` of ``host:port`` (port 6379 when omitted); ValueError if malformed."""
    host, sep, port = address.strip().rpartition(":")
    if not sep:
        return address.strip(), 6379
    if not port.isdigit():
        raise ValueError(f"redisHost {address!r} is not host:port")
    return host.strip("[]") or "127.0.0.1", int(port)


NOT_READY_REPLIES = frozenset({
    "LOADING",  # a restarted server is replaying its data (RDB / AOF) into memory
    "BUSY",  # a script or function runs past busy-reply-threshold
    "MASTERDOWN",  # a replica lost its master (replica-serve-stale-data no)
    "READONLY",  # a write reached a replica: the master just failed over
    "TRYAGAIN",  # a cluster slot is being migrated
    "CLUSTERDOWN",  # the cluster has no quorum / uncovered slots
    "NOREPLICAS",  # fewer replicas than min-replicas-to-write are reachable
})
"""Error replies of a server that is not ready yet: a retry succeeds once it is."""
_REPLY_ERRORS = ("redis.exceptions:ResponseError",
                 "pylotto.components._backends.redis_pipelined:RedisReplyError")
"""redis-py's reply error (its subclasses carry the code in ``status_code`` and the rest in the
text) and the pipelined client's (the whole reply, code first)."""


def _reply_code(exc: BaseException) -> str:
    code = getattr(exc, "status_code", None)
    return code if isinstance(code, str) and code else str(exc).partition(" ")[0]


ERRORS = DriverErrors(
    "redis",
    timeout_errors=("builtins:TimeoutError", "redis.exceptions:TimeoutError"),
    connection_errors=("builtins:OSError", "redis.exceptions:ConnectionError",
                       # a cluster whose slots are not all served (a master failed over)
                       "redis.exceptions:ClusterError", "redis.exceptions:SlotNotCoveredError"),
    rules=(
        Rule(_REPLY_ERRORS, Unavailable, "{backend} is not ready: {reason}",
             when=lambda exc: _reply_code(exc) in NOT_READY_REPLIES,
             reason=lambda exc: str(exc) if str(exc).startswith(_reply_code(exc))
             else f"{_reply_code(exc)} {exc}"),
    ),
)
"""redis-py's errors: timeouts, connection errors and not-ready replies are Unavailable, the
rest Internal."""
map_error = ERRORS.map


@functools.cache
def checked_connection_class(*, tls: bool) -> type[Any]:
    """redis-py's connection class, made to notice a reset connection when the pool lends it.

    The pool asks an idle connection whether it is still usable before lending it, but sees
    only a connection the server closed (FIN), not one reset by the network (RST): that one
    would fail the next call. This class reports the reset, so the pool reconnects first.
    """
    from redis.asyncio.connection import Connection, SSLConnection

    class _NoticesReset:
        async def can_read(self) -> bool:
            reader = getattr(self, "_reader", None)
            error = reader.exception() if reader is not None else None
            if error is not None:
                raise ConnectionError(f"connection reset: {error}")
            result: bool = await super().can_read()  # type: ignore[misc]
            return result

    class CheckedConnection(_NoticesReset, Connection):
        pass

    class CheckedSSLConnection(_NoticesReset, SSLConnection):
        pass

    return CheckedSSLConnection if tls else CheckedConnection


class RedisClient:
    """A redis-py asyncio client with a timeout on every call and pylotto errors out.

    ``what`` names the component in every message (``"state store orders"``).
    """

    def __init__(self, settings: RedisSettings, what: str) -> None:
        self.settings = settings
        self.what = what
        self.timeout = settings.timeout
        self._redis: Any = None
        self._slots = asyncio.Semaphore(settings.connections)
        self._writer: ClusterWriter | None = None

    def connection_options(self) -> dict[str, Any]:
        """redis-py's options for a single server (the first of ``redisHost``)."""
        from pylotto.components._backends.redis_topology import connection_options

        host, port = self.settings.hosts[0]
        return {"host": host, "port": port, "db": self.settings.redis_db,
                **connection_options(self.settings)}

    async def open(self) -> None:
        """Build the pool (a server's, the Sentinel master's or the Cluster's) and check the
        server answers (Unavailable if it does not)."""
        from pylotto.components._backends.redis_topology import redis_py

        # Calls beyond poolSize wait for a slot (within the call's timeout). The slots, not
        # redis-py's BlockingConnectionPool (a condition and a timeout per command: ≈ 25 µs),
        # bound the pool; the headroom is for connections held outside calls (subscriptions).
        self._redis = redis_py(self.settings, self.settings.connections + POOL_HEADROOM)
        try:
            if self.settings.topology == "cluster":
                await self.call(lambda r: r.initialize())
            await self.ping()
        except BaseException:
            await self.close()
            raise

    @property
    def clustered(self) -> bool:
        return self.settings.topology == "cluster"

    @property
    def redis(self) -> Any:
        if self._redis is None:
            raise Unavailable(f"{self.what} is not open")
        return self._redis

    async def close(self) -> None:
        client, self._redis = self._redis, None
        if client is not None:
            # closing a broken pool must not fail the shutdown
            with contextlib.suppress(Exception):
                async with asyncio.timeout(self.timeout):
                    await client.aclose()

    async def call(self, work: Callable[[Any], Awaitable[T]]) -> T:
        """``await work(redis)`` within the timeout; driver errors become pylotto errors."""
        try:
            async with asyncio.timeout(self.timeout), self._slots:
                try:
                    return await unless_cancelled(work(self.redis))
                except Exception as exc:
                    if cancel_requested():  # still a cancellation (the timeout above turns
                        raise asyncio.CancelledError from exc  # its own into TimeoutError)
                    raise
        except PylottoError:
            raise
        except Exception as exc:
            raise map_error(exc, self.what) from exc

    async def ping(self) -> None:
        await self.call(lambda r: r.ping())

    async def write(self, key: str, commands: list[list[Any]]) -> list[Any]:
        """Send write ``commands`` on one key (in a cluster: its master) together; with
        ``waitReplicas`` a ``WAIT`` follows them on their connection and too few confirmations
        fail the call (Unavailable). Every command's reply, an error reply as its exception."""
        from pylotto.components._backends.redis_topology import ClusterWriter, too_few, wait_ms

        wait = self.settings.wait_replicas

        async def send(r: Any) -> list[Any]:
            if self.clustered and wait:
                if self._writer is None:
                    self._writer = ClusterWriter(self.settings)
                return await self._writer.run(r, key, commands)
            pipe = r.pipeline(transaction=False)
            for command in commands:
                pipe.execute_command(*command)
            if wait:
                pipe.execute_command("WAIT", wait, wait_ms(self.settings))
            return list(await pipe.execute(raise_on_error=False))

        results = await self.call(send)
        if wait:
            acked = results.pop()
            if isinstance(acked, Exception):
                raise map_error(acked, self.what)
            if int(acked) < wait:
                raise too_few(self.what, acked, wait)
        return results

    def script(self, source: str) -> Callable[..., Awaitable[Any]]:
        """A Lua script run with EVALSHA (loaded again if the server forgot it):
        ``await script(keys=[...], args=[...])``."""
        registered: dict[int, Any] = {}

        async def run(keys: list[Any], args: list[Any]) -> Any:
            redis = self.redis
            handle = registered.get(id(redis))
            if handle is None:
                handle = registered[id(redis)] = redis.register_script(source)
            return await self.call(lambda _: handle(keys=keys, args=args))

        return run
