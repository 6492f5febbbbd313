"""Conformance cases: one ``cases.yaml`` per capability lists every component under test.

A case: ``name`` (test id), ``type``, ``metadata`` (strings; ``{prefix}`` is replaced by a
per-run random prefix so runs never collide), ``features`` it declares, ``servers`` it needs
(names from tests/support/servers.py; a server that is down fails the case), ``shared`` (true
when two sidecar processes given the same metadata share one backend), ``traits`` (backend
facts the suite relies on, see :class:`Case`) and ``proxy`` — how to point the component at
a TcpProxy for the outage test: ``{key: redisHost, value: "127.0.0.1:{port}"}`` (``{port}``
is the proxy's), ``package`` — a plugin package folder (relative to the repository root)
installed into a temporary folder and put on ``sys.path`` before the case's type is resolved
through its entry point, ``component`` — a pluggable component server (``python`` or
``node``, see examples/pluggable) started once per run on a Unix socket; ``{socket}`` in
metadata is its path. Each capability's suite is parametrised over :func:`load_cases` and
builds components with :func:`build`.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml

from pylotto.components.base import Component, ComponentContext
from pylotto.core.errors import Unavailable
from pylotto.core.metadata import decode
from pylotto.core.registry import resolve
from tests.support import example_plugin
from tests.support.servers import SERVERS, require

T = TypeVar("T")

RUN_PREFIX = f"pyl{uuid.uuid4().hex[:8]}"
"""Random per test run; substituted for ``{prefix}`` in case metadata."""


@dataclass(frozen=True)
class Case:
    capability: str
    name: str
    type: str
    metadata: dict[str, Any] = field(default_factory=dict)
    features: frozenset[str] = frozenset()
    servers: tuple[str, ...] = ()
    shared: bool = False
    traits: frozenset[str] = frozenset()
    """Facts about the backend that are not API features: ``durable`` (survives a restart),
    ``consecutive`` (STRONG ids go up by exactly one)."""
    proxy: dict[str, str] = field(default_factory=dict)
    package: str = ""
    """A plugin package providing ``type`` (see examples/plugins), installed for the run."""
    component: str = ""
    """A pluggable component server to start: ``python`` or ``node`` (examples/pluggable)."""

    @property
    def backend_port(self) -> int:
        """The port of the case's server (the outage test proxies it)."""
        return SERVERS[self.servers[0]]

    def via_proxy(self, port: int) -> dict[str, str]:
        """Metadata overrides sending the component through a proxy on ``port``."""
        return {self.proxy["key"]: self.proxy["value"].replace("{port}", str(port))}

    def has(self, feature: str) -> bool:
        return feature in self.features

    def resolved_metadata(self, **extra: Any) -> dict[str, Any]:
        socket = component_socket(self.component) if self.component else ""

        def fill(value: Any) -> Any:
            if not isinstance(value, str):
                return value
            return value.replace("{prefix}", RUN_PREFIX).replace("{socket}", socket)

        return {k: fill(v) for k, v in {**self.metadata, **extra}.items()}


def load_cases(capability: str, *, where: Callable[[Case], bool] | None = None) -> list[Any]:
    """pytest params, one per case of tests/conformance/<capability>/cases.yaml (those for which
    ``where`` holds, when given)."""
    path = Path(__file__).parent / capability / "cases.yaml"
    raw = yaml.safe_load(path.read_text())
    cases = []
    for entry in raw["cases"]:
        case = Case(
            capability=capability,
            name=entry["name"],
            type=entry["type"],
            metadata=dict(entry.get("metadata") or {}),
            features=frozenset(entry.get("features") or ()),
            servers=tuple(entry.get("servers") or ()),
            shared=bool(entry.get("shared", False)),
            traits=frozenset(entry.get("traits") or ()),
            proxy=dict(entry.get("proxy") or {}),
            package=str(entry.get("package") or ""),
            component=str(entry.get("component") or ""),
        )
        if where is None or where(case):
            cases.append(pytest.param(case, id=case.name))
    return cases


def component_socket(kind: str) -> str:
    """The socket of the pluggable component server ``kind`` (python | node), started on first
    use and stopped when the test run ends."""
    from tests.support.pluggable import start_component

    return str(start_component(kind))


@asynccontextmanager
async def build(case: Case, data_dir: Path, *, app_id: str = "conformance",
                instance: str = "", **metadata: Any) -> AsyncIterator[Any]:
    """An initialised component for ``case`` (closed on exit). Fails if its server is down."""
    require(*case.servers)
    if case.package:
        example_plugin.activate(example_plugin.REPO / case.package)
    cls = resolve(case.capability, case.type)
    name = f"{case.name}{instance}"
    settings = decode(cls.Settings, case.resolved_metadata(**metadata),
                      component=f"{case.capability}.{name}")
    component: Component = cls(name, settings, ComponentContext(
        app_id=app_id, data_dir=data_dir, logger=logging.getLogger(f"test.{name}")))
    await component.init()
    try:
        yield component
    finally:
        await component.close()


async def once_back(call: Callable[[], Awaitable[T]], within: float = 15) -> T:
    """``call()`` retried while it raises Unavailable (a backend just restored may need a
    reconnect); the first success is returned."""
    deadline = time.monotonic() + within
    while True:
        try:
            return await call()
        except Unavailable:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)
