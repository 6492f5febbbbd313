"""``memcached``: a state store in memcached, as components-contrib's ``state.memcached``.

Metadata (contrib's names): ``hosts`` (``host:port[,host:port]``, required; a key lives on one
server, chosen as gomemcache does — CRC-32 (IEEE) of the key modulo the number of servers — so
a Layotto or Dapr sidecar with the same list finds the same items), ``maxIdleConnections``
(connections kept per server, default 2), ``timeout`` (every call; a bare number is
milliseconds as in contrib, default 1000), plus ``keyPrefix`` of every store.

Each item is the memcached item of its key holding the value's bytes unchanged. A key
memcached cannot take (over 250 bytes, or holding whitespace or control characters) is stored
under ``pylotto-sha256-<hex of the key>``. No features are declared, as in contrib: memcached
evicts items under memory pressure and has no conditional delete, so etags, transactions and
first-write are refused (UNIMPLEMENTED) rather than half-kept. TTL is refused too: contrib
passes ``ttlInSeconds`` to memcached but cannot report the expiry (``ttlExpireTime``) that
every pylotto store with TTL reports. Bulk reads and writes are one call per key.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
import zlib
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

from pydantic import BeforeValidator, Field, field_validator

from pylotto.components._backends.redis_client import host_port
from pylotto.components.base import ComponentContext
from pylotto.components.errors import DriverErrors
from pylotto.components.state.base import (
    Consistency,
    DeleteRequest,
    GetResult,
    SetRequest,
    StateSettings,
    StateStore,
)
from pylotto.core.errors import Unavailable
from pylotto.core.metadata import parse_duration
from pylotto.core.types import Metadata

T = TypeVar("T")
_VALID_KEY = re.compile(r"^[^\s\x00-\x1f\x7f-\x9f]+$")
MAX_KEY_BYTES = 250


def _milliseconds(value: object) -> float:
    """contrib's ``timeout`` is an integer of milliseconds; a duration (``2s``) works too."""
    if isinstance(value, str) and value.strip().isdigit():
        return int(value) / 1000
    if isinstance(value, int | float):
        return float(value) / 1000
    return parse_duration(value)


Millis = Annotated[float, BeforeValidator(_milliseconds)]


class MemcachedSettings(StateSettings):
    hosts: str = Field(alias="hosts", min_length=1)
    max_idle_connections: int = Field(2, alias="maxIdleConnections", ge=1)
    timeout: Millis = Field(1.0, alias="timeout", gt=0)

    @field_validator("hosts")
    @classmethod
    def _hosts(cls, value: str) -> str:
        hosts = [h.strip() for h in value.split(",") if h.strip()]
        if not hosts:
            raise ValueError("expected host:port[,host:port]")
        for host in hosts:
            host_port(host)
        return ",".join(hosts)


ERRORS = DriverErrors(
    "memcached",
    connection_errors=("builtins:OSError", "builtins:ConnectionError",
                       "asyncio:IncompleteReadError"),
    connection_message="{backend} unreachable: {type} {exc}",
    internal_message="{backend}: {type} {exc}",
)
"""A broken or refused connection, or no answer in time: Unavailable; the rest Internal."""


def stored_key(key: str) -> bytes:
    raw = key.encode()
    if len(raw) <= MAX_KEY_BYTES and _VALID_KEY.match(key) and "\n" not in key:
        return raw
    return b"pylotto-sha256-" + hashlib.sha256(raw).hexdigest().encode()


class MemcachedStateStore(StateStore):
    Settings = MemcachedSettings
    settings: MemcachedSettings
    features = frozenset()

    def __init__(self, name: str, settings: MemcachedSettings, context: ComponentContext) -> None:
        super().__init__(name, settings, context)
        self.what = f"state store {name}"
        self.hosts = [host_port(h) for h in settings.hosts.split(",")]
        self.clients: list[Any] = []

    async def init(self) -> None:
        import aiomcache

        self.clients = [aiomcache.Client(host, port, pool_size=self.settings.max_idle_connections,
                                         pool_minsize=1) for host, port in self.hosts]
        try:
            await self.ping()
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        clients, self.clients = self.clients, []
        for client in clients:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(self.settings.timeout):
                    await client.close()

    async def _call(self, key: bytes, work: Callable[[Any], Awaitable[T]]) -> T:
        if not self.clients:
            raise Unavailable(f"{self.what} is not open")
        client = self.clients[zlib.crc32(key) % len(self.clients)]
        try:
            async with asyncio.timeout(self.settings.timeout):
                return await work(client)
        except Exception as exc:
            raise ERRORS.map(exc, self.what) from exc

    async def ping(self) -> None:
        if not self.clients:
            raise Unavailable(f"{self.what} is not open")
        for client in self.clients:
            try:
                async with asyncio.timeout(self.settings.timeout):
                    await client.version()
            except Exception as exc:
                raise ERRORS.map(exc, self.what) from exc

    async def get(self, key: str, consistency: Consistency, metadata: Metadata) -> GetResult | None:
        stored = stored_key(key)
        value = await self._call(stored, lambda c: c.get(stored))
        return None if value is None else GetResult(bytes(value))

    async def set(self, request: SetRequest) -> None:
        stored = stored_key(request.key)
        await self._call(stored, lambda c: c.set(stored, request.value))

    async def delete(self, request: DeleteRequest) -> None:
        stored = stored_key(request.key)
        await self._call(stored, lambda c: c.delete(stored))
