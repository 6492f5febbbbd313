"""Conformance cases: one ``cases.yaml`` per capability lists every component under test.

A case: ``name`` (test id), ``type``, ``metadata`` (strings; ``{prefix}`` is replaced by a
per-run random prefix so runs never collide, ``{cases}`` by the folder of the case file),
``features`` it declares (names of the capability's ``Feature`` enum, checked when the file is
loaded; see :func:`assert_declares_exactly` and :func:`undeclared`), ``servers`` it needs
(names from tests/support/servers.py; a server that is down fails the case), ``shared`` (true
when two sidecar processes given the same metadata share one backend), ``traits`` (backend
facts the suite relies on, see :class:`Case`) and ``proxy`` — how to point the component at
a TcpProxy for the outage test: ``{key: redisHost, value: "127.0.0.1:{port}"}`` (``{port}``
is the proxy's), ``package`` — a plugin package folder (relative to the repository root)
installed into a temporary folder and put on ``sys.path`` before the case's type is resolved
through its entry point, ``component`` — a pluggable component server (``python`` or
``node``, see examples/pluggable) started once per run on a Unix socket; ``{socket}`` in
metadata is its path; ``{redis2}`` stands for two extra Redis servers started for the run
(``127.0.0.1:port,127.0.0.1:port``: a redlock's independent servers). Each capability's
suite is parametrised over :func:`load_cases` and
builds components with :func:`build`. ``version`` (Dapr's ``spec.version``, default none)
picks the type's class for that version, e.g. ``state.postgresql`` ``v2``.

Features are checked both ways by every suite: the component declares exactly the features its
case lists (:func:`assert_declares_exactly`), and every feature of the capability a case does
not list is refused with Unsupported naming the store and the feature, or — where the
capability has a documented fallback instead of a refusal — falls back as documented
(:func:`undeclared` parametrises that test over every case and feature it does not list).
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import re
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
from pylotto.core.errors import Unavailable, Unsupported
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
    version: str = ""
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
        """Whether the case lists ``feature``; a name that is no feature of the capability is
        an error (a typo must not turn a check off)."""
        known = capability_features(self.capability)
        if feature not in known:
            raise ValueError(f"{feature!r} is no {self.capability} feature "
                             f"(known: {', '.join(sorted(known)) or 'none'})")
        return feature in self.features

    def resolved_metadata(self, **extra: Any) -> dict[str, Any]:
        socket = component_socket(self.component) if self.component else ""

        def fill(value: Any) -> Any:
            if not isinstance(value, str):
                return value
            if "{redis2}" in value:
                from tests.support.redis_servers import extra_redis

                value = value.replace("{redis2}", ",".join(
                    f"127.0.0.1:{port}" for port in extra_redis(2)))
            return (value.replace("{prefix}", RUN_PREFIX).replace("{socket}", socket)
                    .replace("{cases}", str(CASES_DIR / self.capability)))

        return {k: fill(v) for k, v in {**self.metadata, **extra}.items()}


CASES_DIR = Path(__file__).parent
"""tests/conformance: one folder per capability, each with its cases.yaml."""


def capability_features(capability: str) -> frozenset[str]:
    """What a component of ``capability`` may declare: the members of the ``Feature`` enum of
    ``pylotto.components.<capability>.base`` (none when the capability defines no enum)."""
    module = importlib.import_module(f"pylotto.components.{capability}.base")
    enum = getattr(module, "Feature", None)
    return frozenset(str(member) for member in enum) if enum is not None else frozenset()


def load_cases(capability: str, *, where: Callable[[Case], bool] | None = None) -> list[Any]:
    """pytest params, one per case of tests/conformance/<capability>/cases.yaml (those for which
    ``where`` holds, when given). A case listing a feature the capability does not define is
    refused here, naming the file, the case and the features there are."""
    path = CASES_DIR / capability / "cases.yaml"
    raw = yaml.safe_load(path.read_text())
    known = capability_features(capability)
    cases = []
    for entry in raw["cases"]:
        unknown = set(entry.get("features") or ()) - known
        if unknown:
            raise ValueError(
                f"{path}: case {entry['name']!r} lists {', '.join(sorted(unknown))}, which "
                f"{capability} components cannot declare "
                f"(features of {capability}: {', '.join(sorted(known)) or 'none'})")
        case = Case(
            capability=capability,
            name=entry["name"],
            type=entry["type"],
            version=str(entry.get("version") or ""),
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


def assert_declares_exactly(case: Case, component: Component) -> None:
    """The component declares the features its case lists, no more and no fewer."""
    declared, listed = set(component.features), set(case.features)
    problems = []
    if declared - listed:
        problems.append(f"declares {', '.join(sorted(declared - listed))}, "
                        "which its cases.yaml entry does not list")
    if listed - declared:
        problems.append(f"does not declare {', '.join(sorted(listed - declared))}, "
                        "which its cases.yaml entry lists")
    assert not problems, (f"{case.capability} case {case.name!r} ({case.type}): "
                          + "; ".join(problems))


Check = Callable[[Case, Component], Awaitable[None]]
"""A call that uses one feature of the case's built component (through its capability)."""


@dataclass(frozen=True)
class Refused:
    """An undeclared feature: ``call`` must raise Unsupported with a message matching
    ``message``, a regular expression naming the feature in which ``{store}`` stands for the
    component's name (the call reaches it under that name)."""

    call: Check
    message: str

    async def check(self, case: Case, component: Component) -> None:
        with pytest.raises(Unsupported) as refusal:
            await self.call(case, component)
        text, expected = str(refusal.value), self.message.replace("{store}",
                                                                  re.escape(component.name))
        assert re.search(expected, text), f"refusal {text!r} does not match {expected!r}"


@dataclass(frozen=True)
class FallsBack:
    """An undeclared feature the capability makes up for instead of refusing it (documented on
    the feature); ``check`` proves the fallback."""

    check: Check


Undeclared = Refused | FallsBack


def undeclared(capability: str, checks: dict[str, Undeclared]) -> list[Any]:
    """pytest params ``(case, feature)``: each case with each feature of the capability that it
    does not list, with the suite's ``checks[feature]`` telling what must happen then. A
    feature of the capability the suite has no check for fails the collection."""
    missing = capability_features(capability) - checks.keys()
    if missing:
        raise ValueError(f"the {capability} suite says nothing of undeclared "
                         f"{', '.join(sorted(missing))}: add a Refused or FallsBack check")
    params = []
    for param in load_cases(capability):
        case: Case = param.values[0]
        for feature in sorted(capability_features(capability) - case.features):
            params.append(pytest.param(case, feature, id=f"{case.name}-{feature}"))
    return params


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
    cls = resolve(case.capability, case.type, case.version)
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
