"""What every ZooKeeper-backed component shares: settings, one aiozk session, call timeouts
and the mapping of ZooKeeper errors to pylotto errors.

Metadata (Layotto's names): ``zookeeperHosts`` (``host:port[,host:port]``; ``servers`` is
accepted too), ``basePath`` (the znode every path of the component goes under, default
``/pylotto``), ``sessionTimeout`` (a duration, default 10s: how long ZooKeeper keeps the
session — and its ephemeral nodes — of a sidecar it cannot hear from), ``timeout`` (a duration,
default 10s: the limit of every call).

aiozk is imported when the component starts. After a lost connection aiozk reconnects in the
background and resumes the session if it has not expired; calls made meanwhile fail with
Unavailable at their timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from pydantic import Field, field_validator

from pylotto.components.errors import DriverErrors
from pylotto.core.errors import Unavailable
from pylotto.core.metadata import ComponentSettings, Duration

T = TypeVar("T")
DEFAULT_TIMEOUT = 10.0


class ZookeeperSettings(ComponentSettings):
    zookeeper_hosts: str = Field(alias="zookeeperHosts", validation_alias="servers",
                                 min_length=1)
    base_path: str = Field("/pylotto", alias="basePath")
    session_timeout: Duration = Field(10.0, alias="sessionTimeout", gt=0)
    timeout: Duration = Field(DEFAULT_TIMEOUT, alias="timeout", gt=0)

    @field_validator("zookeeper_hosts")
    @classmethod
    def _hosts(cls, value: str) -> str:
        for host in value.split(","):
            name, sep, port = host.strip().rpartition(":")
            if not sep or not name or not port.isdigit():
                raise ValueError(f"zookeeperHosts {value!r}: expected host:port[,host:port]")
        return value

    @field_validator("base_path")
    @classmethod
    def _absolute(cls, value: str) -> str:
        return "/" + value.strip("/")


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
                await asyncio.wait_for(zk.close(), self.timeout)

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
