"""The one place where Redis metadata becomes a client: a single server, a Sentinel-watched
master, or a Cluster (Dapr's keys: ``redisType``, ``failover``, ``sentinelMasterName``,
``sentinelUsername``, ``sentinelPassword``; their rules: :class:`RedisSettings`).

- ``redisType: node`` (the default), ``failover`` false: one server, ``redisHost``.
- ``failover: true``: ``redisHost`` lists the sentinels (``host:port,host:port``);
  ``sentinelMasterName`` names the master they watch. Every connection asks the sentinels
  where the master is and checks it is one (``ROLE``) before use; a connection that fails or is
  told ``READONLY`` (its server was demoted) is dropped, and the next call asks again. The
  request/response components (state, lock, sequencer) keep the pipelined client
  (:mod:`.redis_pipelined`), pointed at the master; the others use redis-py's ``Sentinel``.
- ``redisType: cluster``: ``redisHost`` lists some cluster nodes (one is enough, the others
  are found). Every component uses redis-py's ``RedisCluster``, which routes each command to
  the master of its key's slot and follows ``MOVED``/``ASK``. A command or Lua script may
  touch only keys of one slot: components group their multi-key work by
  :meth:`ClusterRequestClient.slot_of`.

``waitReplicas: N`` (pylotto's own key) acknowledges a write of the
state, lock and sequencer stores and a pub/sub publish only once N replicas confirmed it
(``WAIT N``): a master that dies right after answering then loses no acknowledged write, since
Sentinel promotes the replica with the most data (and in a cluster the replica with the most
data is the first to stand for election). A write that N replicas did not confirm in
time fails with Unavailable (it may still have been applied, as every failed write).

Driver retries stay off in every mode (a retried INCR or script could apply twice): a call
during a failover fails with Unavailable, the next one finds the new master.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, Protocol

import hiredis

from pylotto.components._backends.redis_client import (
    RedisSettings,
    checked_connection_class,
    map_error,
)
from pylotto.core.errors import PylottoError, Unavailable


class RequestClient(Protocol):
    """What the request/response components (state, lock, sequencer) call."""

    what: str
    timeout: float

    async def open(self) -> None: ...
    async def close(self) -> None: ...
    async def ping(self) -> None: ...
    async def execute(self, *command: str | bytes | int | float, write: bool = False) -> Any: ...
    def script(self, source: str, write: bool = False) -> Callable[..., Awaitable[Any]]: ...
    def slot_of(self, key: str) -> int | None: ...
    def scan(self, pattern: str, count: int) -> AsyncIterator[bytes]: ...


def request_client(settings: RedisSettings, what: str) -> RequestClient:
    """The client of a state, lock or sequencer store: pipelined unless it is a cluster."""
    if settings.topology == "cluster":
        return ClusterRequestClient(settings, what)
    from pylotto.components._backends.redis_pipelined import PipelinedRedisClient

    return PipelinedRedisClient(settings, what)


def group_by_slot(client: RequestClient, keys: Sequence[str]) -> list[list[int]]:
    """The positions of ``keys`` grouped by hash slot (one group when not a cluster), so each
    group can be one command or script."""
    groups: dict[int | None, list[int]] = {}
    for index, key in enumerate(keys):
        groups.setdefault(client.slot_of(key), []).append(index)
    return list(groups.values())


# ---- Sentinel: where the master is ---------------------------------------------------------

async def _ask(host: str, port: int, commands: Sequence[Sequence[str]], within: float,
               tls: bool) -> list[Any]:
    """The replies of ``commands`` sent to one server on a connection of their own."""
    import ssl

    context = ssl.create_default_context() if tls else None
    async with asyncio.timeout(within):
        reader, writer = await asyncio.open_connection(host, port, ssl=context)
        try:
            for command in commands:
                writer.write(hiredis.pack_command(tuple(command)))  # type: ignore[arg-type]
            await writer.drain()
            parser = hiredis.Reader()
            replies: list[Any] = []
            while len(replies) < len(commands):
                data = await reader.read(65536)
                if not data:
                    raise ConnectionError("the sentinel closed the connection")
                parser.feed(data)
                while (reply := parser.gets()) is not False:
                    replies.append(reply)
            return replies
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


async def sentinel_master(settings: RedisSettings, within: float) -> tuple[str, int]:
    """The master's address as the first sentinel that knows it says
    (``SENTINEL get-master-addr-by-name``); ConnectionError when none does."""
    problems: list[str] = []
    for host, port in settings.hosts:
        commands: list[list[str]] = []
        if settings.sentinel_password:
            commands.append(["AUTH", settings.sentinel_username, settings.sentinel_password]
                            if settings.sentinel_username else
                            ["AUTH", settings.sentinel_password])
        commands.append(["SENTINEL", "get-master-addr-by-name", settings.sentinel_master_name])
        try:
            replies = await _ask(host, port, commands, within, settings.enable_tls)
        except (OSError, TimeoutError) as exc:
            problems.append(f"{host}:{port}: {exc or type(exc).__name__}")
            continue
        errors = [str(r) for r in replies if isinstance(r, hiredis.ReplyError)]
        address = replies[-1]
        if errors or not address:
            problems.append(f"{host}:{port}: " + ("; ".join(errors) or "does not know master "
                                                  f"{settings.sentinel_master_name!r}"))
            continue
        return address[0].decode(), int(address[1])
    raise ConnectionError(f"no sentinel gave the address of master "
                          f"{settings.sentinel_master_name!r}: {', '.join(problems)}")


# ---- redis-py clients ----------------------------------------------------------------------

def connection_options(settings: RedisSettings) -> dict[str, Any]:
    """redis-py's options of every connection (the address aside)."""
    return {
        "username": settings.redis_username or None,
        "password": settings.redis_password or None,
        "ssl": settings.enable_tls,
        "socket_timeout": settings.timeout,
        "socket_connect_timeout": settings.timeout,
        "socket_keepalive": True,
    }


def no_retries() -> Any:
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    return Retry(NoBackoff(), 0)


def redis_py(settings: RedisSettings, max_connections: int) -> Any:
    """The redis-py asyncio client of ``settings``' topology."""
    options = connection_options(settings)
    topology = settings.topology
    if topology == "cluster":
        from redis.asyncio.cluster import ClusterNode, RedisCluster

        return RedisCluster(
            startup_nodes=[ClusterNode(host, port) for host, port in settings.hosts],
            max_connections=max_connections, retry=no_retries(), **options)
    if topology == "sentinel":
        from redis.asyncio.sentinel import Sentinel

        sentinel_options = {
            "username": settings.sentinel_username or None,
            "password": settings.sentinel_password or None,
            "ssl": settings.enable_tls,
            "socket_timeout": settings.timeout,
            "socket_connect_timeout": settings.timeout,
        }
        sentinel = Sentinel(  # type: ignore[no-untyped-call]
            settings.hosts, sentinel_kwargs=sentinel_options, db=settings.redis_db, **options)
        return sentinel.master_for(settings.sentinel_master_name,
                                   max_connections=max_connections, check_connection=True)
    from redis.asyncio import ConnectionPool, Redis

    [(host, port)] = settings.hosts
    options["connection_class"] = checked_connection_class(tls=options.pop("ssl"))
    pool = ConnectionPool(host=host, port=port, db=settings.redis_db,
                          max_connections=max_connections, **options)
    return Redis(connection_pool=pool)


def wait_ms(settings: RedisSettings) -> int:
    """How long a ``WAIT`` waits for the replicas: half the timeout, at most a second."""
    return max(1, int(min(settings.timeout / 2, 1.0) * 1000))


def too_few(what: str, acked: Any, wait: int) -> Unavailable:
    return Unavailable(f"{what}: the write was confirmed by {acked} of the {wait} replicas "
                       "waitReplicas asks for (it may be applied)")


class ClusterWriter:
    """Writes followed by ``WAIT`` on the connection of the master of their key's slot (a
    command routed by redis-py may take any pooled connection, where WAIT would not see it).
    A ``MOVED`` reply (not executed) refreshes the slot map and sends again, once; a broken
    connection refreshes it before the next write."""

    def __init__(self, settings: RedisSettings) -> None:
        self.wait = settings.wait_replicas
        self.ms = wait_ms(settings)
        self._stale = False

    async def run(self, cluster: Any, key: str | bytes,
                  commands: Sequence[Sequence[Any]]) -> list[Any]:
        """Every command's reply (an error reply as its exception) and WAIT's count last."""
        from redis.exceptions import MovedError, ResponseError

        for attempt in range(2):
            if self._stale:
                await cluster.nodes_manager.initialize()
                self._stale = False
            node = cluster.get_node_from_key(key)
            connection = node.acquire_connection()
            try:
                await connection.send_packed_command(connection.pack_commands(
                    [*commands, ("WAIT", self.wait, self.ms)]))
                replies: list[Any] = []
                for _ in range(len(commands) + 1):
                    try:
                        replies.append(await connection.read_response())
                    except ResponseError as exc:
                        replies.append(exc)
            except BaseException:
                self._stale = True
                with contextlib.suppress(Exception):
                    await connection.disconnect()
                raise
            finally:
                node.release(connection)
            if attempt == 0 and any(isinstance(r, MovedError) for r in replies):
                self._stale = True
                continue
            return replies
        raise AssertionError("not reached")


class ClusterRequestClient:
    """The request/response interface on redis-py's ``RedisCluster``."""

    def __init__(self, settings: RedisSettings, what: str) -> None:
        self.settings = settings
        self.what = what
        self.timeout = settings.timeout
        self._cluster: Any = None
        self._writer = ClusterWriter(settings)

    async def open(self) -> None:
        self._cluster = redis_py(self.settings, self.settings.connections)
        try:
            await self._call(self._cluster.initialize())
            await self.ping()
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        cluster, self._cluster = self._cluster, None
        if cluster is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(self.timeout):
                    await cluster.aclose()

    @property
    def cluster(self) -> Any:
        if self._cluster is None:
            raise Unavailable(f"{self.what} is not open")
        return self._cluster

    async def _call(self, work: Awaitable[Any]) -> Any:
        try:
            async with asyncio.timeout(self.timeout):
                return await work
        except PylottoError:
            raise
        except Exception as exc:
            raise map_error(exc, self.what) from exc

    async def ping(self) -> None:
        await self._call(self.cluster.ping())

    async def execute(self, *command: str | bytes | int | float, write: bool = False) -> Any:
        if write and self.settings.wait_replicas:
            return await self._call(self._waited(str(command[1]), [command]))
        return await self._call(self.cluster.execute_command(*command))

    async def _waited(self, key: str, commands: list[Sequence[Any]],
                      if_no_script: Sequence[Any] | None = None) -> Any:
        from redis.exceptions import NoScriptError

        replies = await self._writer.run(self.cluster, key, commands)
        if if_no_script is not None and isinstance(replies[0], NoScriptError):
            replies = await self._writer.run(self.cluster, key, [if_no_script])
        reply, acked = replies
        if isinstance(reply, Exception):
            raise reply
        if isinstance(acked, Exception):
            raise acked
        if int(acked) < self.settings.wait_replicas:
            raise too_few(self.what, acked, self.settings.wait_replicas)
        return reply

    def script(self, source: str, write: bool = False) -> Callable[..., Awaitable[Any]]:
        handles: dict[int, Any] = {}
        sha = hashlib.sha1(source.encode()).hexdigest()

        async def run(keys: Sequence[Any], args: Sequence[Any]) -> Any:
            if write and self.settings.wait_replicas:
                counted = (len(keys), *keys, *args)
                return await self._call(self._waited(
                    str(keys[0]), [("EVALSHA", sha, *counted)], ("EVAL", source, *counted)))
            cluster = self.cluster
            handle = handles.get(id(cluster))
            if handle is None:
                handle = handles[id(cluster)] = cluster.register_script(source)
            return await self._call(handle(keys=list(keys), args=list(args)))

        return run

    def slot_of(self, key: str) -> int | None:
        from redis.crc import key_slot

        return int(key_slot(key.encode()))

    async def scan(self, pattern: str, count: int) -> AsyncIterator[bytes]:
        """Every key matching ``pattern`` on every master."""
        iterator = self.cluster.scan_iter(match=pattern, count=count)
        while True:
            try:
                async with asyncio.timeout(self.timeout):
                    key = await anext(iterator)
            except StopAsyncIteration:
                return
            except PylottoError:
                raise
            except Exception as exc:
                raise map_error(exc, self.what) from exc
            yield key


class ClusterPubSub:
    """Keyspace notifications of a whole cluster: one pub/sub connection per master (each
    node notifies only of its own keys), seen as one redis-py ``PubSub``: ``subscribe``,
    ``psubscribe`` (and un-), ``get_message``, ``ping``, ``aclose``. A subscription is
    confirmed once every master confirmed it; a connection lost on any master fails
    ``get_message``, so the caller reconnects (finding the masters again)."""

    def __init__(self, settings: RedisSettings, masters: Sequence[tuple[str, int]]) -> None:
        from redis.asyncio import Redis

        self._clients = [Redis(host=host, port=port, **connection_options(settings))
                         for host, port in masters]
        self._pubsubs: list[Any] = [client.pubsub() for client in self._clients]
        self._queue: asyncio.Queue[dict[str, Any] | BaseException] = asyncio.Queue()
        self._confirmed: dict[tuple[str, bytes], set[int]] = {}
        self._readers: list[asyncio.Task[None]] = []

    @classmethod
    def of(cls, cluster: Any, settings: RedisSettings) -> ClusterPubSub:
        return cls(settings, [(node.host, node.port) for node in cluster.get_primaries()])

    def _start(self) -> None:
        if not self._readers:
            self._readers = [asyncio.create_task(self._read(i, ps))
                             for i, ps in enumerate(self._pubsubs)]

    async def _read(self, index: int, pubsub: Any) -> None:
        try:
            while True:
                message = await pubsub.get_message(timeout=1.0)  # None: a silent second
                if message is None:
                    continue
                kind = message.get("type")
                if kind in ("subscribe", "psubscribe"):
                    channel = message["channel"]
                    name = (kind, channel if isinstance(channel, bytes) else channel.encode())
                    nodes = self._confirmed.setdefault(name, set())
                    nodes.add(index)
                    if len(nodes) < len(self._pubsubs):
                        continue
                    del self._confirmed[name]
                self._queue.put_nowait(message)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            self._queue.put_nowait(exc)

    async def _everywhere(self, method: str, *names: str) -> None:
        await asyncio.gather(*(getattr(ps, method)(*names) for ps in self._pubsubs))
        self._start()

    async def subscribe(self, *names: str) -> None:
        await self._everywhere("subscribe", *names)

    async def psubscribe(self, *names: str) -> None:
        await self._everywhere("psubscribe", *names)

    async def unsubscribe(self, *names: str) -> None:
        await self._everywhere("unsubscribe", *names)

    async def punsubscribe(self, *names: str) -> None:
        await self._everywhere("punsubscribe", *names)

    async def ping(self) -> None:
        await self._everywhere("ping")

    async def get_message(self, timeout: float | None = None  # noqa: ASYNC109 (PubSub's)
                          ) -> dict[str, Any] | None:
        try:
            async with asyncio.timeout(timeout):
                item = await self._queue.get()
        except TimeoutError:
            return None
        if isinstance(item, BaseException):
            raise item
        return item

    async def aclose(self) -> None:
        for reader in self._readers:
            reader.cancel()
        await asyncio.gather(*self._readers, return_exceptions=True)
        for pubsub, client in zip(self._pubsubs, self._clients, strict=True):
            with contextlib.suppress(Exception):
                await pubsub.aclose()
            with contextlib.suppress(Exception):
                await client.aclose()
