"""Shared by the broker-specific tests (one broker per module, each with its ``backend``
fixture): components built on private topics (a random name per test) and a recording handler.
The pub/sub contract every broker passes is the conformance suite's (tests/conformance/pubsub).

Every name a test creates on a server (streams, queues, exchanges, JetStream streams, consumer
groups) carries :data:`RUN`, and the session removes what carries it at the end. A broker that
is down fails its tests (never skips them).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pylotto.components.base import ComponentContext
from pylotto.components.pubsub.base import PubSub, Subscription
from pylotto.core.errors import Unavailable
from pylotto.core.metadata import decode
from pylotto.core.registry import resolve
from tests.support.servers import SERVERS, require
from tests.support.tcp_proxy import TcpProxy

RUN = f"pylbrk{uuid.uuid4().hex[:8]}"
"""In every topic, group and stream name of this run (removed at the end of the session)."""
APP_ID = f"{RUN}-app"
WAIT = 15.0
FAST_RETRY = {"backOffPolicy": "constant", "backOffDuration": "100ms"}

Build = Callable[..., AbstractAsyncContextManager[PubSub]]


@dataclass(frozen=True)
class Backend:
    """How a test module reaches its broker."""

    type: str
    """The component type (registry name)."""
    server: str
    """The server's name in tests/support/servers.py."""
    metadata: dict[str, str]
    proxy_key: str
    """The metadata key that points the component at a server; ``proxy_value`` with
    ``{port}`` replaced sends it through a TcpProxy instead."""
    proxy_value: str
    traits: frozenset[str] = field(default_factory=frozenset)
    """``ordered``: one subscriber with one handler slot sees messages in publish order."""

    @property
    def port(self) -> int:
        return SERVERS[self.server]

    def via(self, proxy: TcpProxy) -> dict[str, str]:
        return {self.proxy_key: self.proxy_value.replace("{port}", str(proxy.port))}


@pytest.fixture
def topic() -> str:
    return f"{RUN}-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def build(backend: Backend, tmp_path: Path) -> Build:
    """``async with build(**metadata) as broker``: an initialised component of the module's
    backend (fast constant back-off, 3s timeout), closed on exit. ``data_dir=`` and ``app_id=``
    override its context."""
    require(backend.server)

    @asynccontextmanager
    async def make(*, data_dir: Path | None = None, app_id: str = APP_ID,
                   **metadata: str) -> AsyncIterator[PubSub]:
        cls = resolve("pubsub", backend.type)
        values = {"timeout": "3s", **FAST_RETRY, **backend.metadata, **metadata}
        settings = decode(cls.Settings, values, component=f"pubsub.{backend.type}")
        component = cls(backend.type, settings, ComponentContext(
            app_id=app_id, data_dir=data_dir or tmp_path,
            logger=logging.getLogger(f"test.brokers.{backend.type}")))
        assert isinstance(component, PubSub)
        await component.init()
        try:
            yield component
        finally:
            await component.close()

    return make


@pytest.fixture(scope="session", autouse=True)
def _remove_run_data() -> Iterator[None]:
    yield
    from tests.support.cleanup import remove_run_data

    asyncio.run(remove_run_data(RUN))


async def eventually(check: Callable[[], bool], within: float = WAIT, what: str = "") -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, f"not met within {within}s: {what or check}"
        await asyncio.sleep(0.02)


async def once_back(call: Callable[[], Any], within: float = 20.0) -> None:
    """``await call()`` retried while it raises Unavailable (a broker just restored)."""
    deadline = time.monotonic() + within
    while True:
        try:
            await call()
            return
        except Unavailable:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.3)


@asynccontextmanager
async def releasing(gate: asyncio.Event) -> AsyncIterator[asyncio.Event]:
    """Set ``gate`` on the way out, also when a check failed (closing a component waits for
    the handler calls the gate holds)."""
    try:
        yield gate
    finally:
        gate.set()


async def close_all(*subscriptions: Subscription) -> None:
    for subscription in subscriptions:
        await subscription.close()
