"""What every ZooKeeper-backed component shares: settings, one aiozk session, call timeouts
and the mapping of ZooKeeper errors to pylotto errors.

Metadata (Layotto's names): ``zookeeperHosts`` (``host[:port]``, several separated by ``,``
or by ``;`` as Layotto writes them; a host without a port is on ZooKeeper's 2181, as Layotto's
go-zookeeper client assumes; ``servers``, Dapr's name, is accepted too), ``basePath`` (the
znode every path of the component goes under, default ``/pylotto``), ``sessionTimeout`` (a
duration, default 10s: how long ZooKeeper keeps the session — and its ephemeral nodes — of a
sidecar it cannot hear from; Layotto's bare number is seconds), ``timeout`` (a duration,
default 10s: the limit of every call). Layotto's ``zookeeperPassword`` and ``logInfo`` are
accepted with no effect, as in Layotto (which never sends the password).

aiozk is imported when the component starts. After a lost connection aiozk reconnects in the
background and resumes the session if it has not expired; calls made meanwhile fail with
Unavailable at their timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from pydantic import Field, field_validator

from pylotto.components.errors import DriverErrors
from pylotto.core.errors import Unavailable
from pylotto.core.metadata import ComponentSettings, Duration

T = TypeVar("T")
DEFAULT_TIMEOUT = 10.0
DEFAULT_PORT = 2181


class ZookeeperSettings(ComponentSettings):
    zookeeper_hosts: str = Field(alias="zookeeperHosts", validation_alias="servers",
                                 min_length=1)
    base_path: str = Field("/pylotto", alias="basePath")
    session_timeout: Duration = Field(10.0, alias="sessionTimeout", gt=0)
    timeout: Duration = Field(DEFAULT_TIMEOUT, alias="timeout", gt=0)
    zookeeper_password: str = Field("", alias="zookeeperPassword")
    """Layotto's key: it parses it and never sends it (no ZooKeeper auth); the same here."""
    log_info: bool = Field(False, alias="logInfo")
    """Layotto's key for go-zookeeper's connection logs; aiozk logs at debug level anyway."""

    @field_validator("zookeeper_hosts")
    @classmethod
    def _hosts(cls, value: str) -> str:
        hosts = [normalize_host(host, value) for host in re.split(r"[,;]", value)
                 if host.strip()]
        if not hosts:
            raise ValueError(f"zookeeperHosts {value!r}: expected host[:port][,host[:port]]")
        return ",".join(hosts)

    @field_validator("base_path")
    @classmethod
    def _absolute(cls, value: str) -> str:
        return "/" + value.strip("/")


def normalize_host(host: str, hosts: str) -> str:
    """``host:port`` for one entry of ``zookeeperHosts``, with 2181 when no port is given
    (an IPv6 address is written ``[::1]`` or ``[::1]:2181``)."""
    host = host.strip()
    valid = True
    if host.startswith("["):
        name, _, rest = host[1:].partition("]")
        valid = rest == "" or rest.startswith(":")
        name, port = f"[{name}]" if name else "", rest[1:]
    elif host.count(":") > 1:
        name, port = f"[{host}]", ""
    else:
        name, _, port = host.partition(":")
    if not valid or not name or (port != "" and not port.isdigit()):
        raise ValueError(f"zookeeperHosts {hosts!r}: expected host[:port][,host[:port]]")
    return f"{name}:{port or DEFAULT_PORT}"


ERRORS = DriverErrors(
    "zookeeper",
    timeout_errors=(),
    connection_errors=("builtins:TimeoutError", "builtins:OSError", *(
        f"aiozk.exc:{name}" for name in (
            "ConnectError", "NoServersError", "SessionLost", "TimeoutError", "ConnectionLoss",
            "FailedRetry", "OperationTimeout", "UnfinishedRead", "InvalidClientState"))),
    connection_message="{backend} unreachable: {type} {exc}",
    internal_message="{backend}: {type} {exc}",
)
"""aiozk's errors: a lost or unreachable session is Unavailable, the rest Internal."""
map_error = ERRORS.map


class ZookeeperClient:
    def __init__(self, settings: ZookeeperSettings, what: str) -> None:
        self.settings = settings
        self.what = what
        self.timeout = settings.timeout
        self.zk: Any = None

    async def open(self) -> None:
        from aiozk import RetryPolicy, ZKClient

        self.zk = ZKClient(self.settings.zookeeper_hosts, chroot=self.settings.base_path,
                           session_timeout=self.settings.session_timeout,
                           retry_policy=RetryPolicy.n_times(2), read_timeout=self.timeout)
        await self.call(lambda zk: zk.start())

    async def close(self) -> None:
        zk, self.zk = self.zk, None
        if zk is not None:
            # a session that cannot close cleanly expires on the server
            with contextlib.suppress(Exception):
                async with asyncio.timeout(self.timeout):
                    await zk.close()

    async def call(self, work: Callable[[Any], Awaitable[T]], *,
                   passthrough: tuple[type[BaseException], ...] = ()) -> T:
        """``await work(zk)`` within the timeout; the ``passthrough`` errors (NoNode,
        NodeExists, BadVersion...) reach the caller as they are, others become pylotto
        errors."""
        if self.zk is None:
            raise Unavailable(f"{self.what} is not open")
        try:
            async with asyncio.timeout(self.timeout):
                return await work(self.zk)
        except passthrough:
            raise
        except Exception as exc:
            raise map_error(exc, self.what) from exc

    async def ping(self) -> None:
        await self.call(lambda zk: zk.exists("/"))
