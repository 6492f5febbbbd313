"""Bindings: InvokeBinding on a named output binding, and the events of input bindings handed
to the app (see docs/bindings.md).

Input bindings are read as daprd reads them (``pkg/runtime/processor/binding``): once the
sidecar has started, each binding whose ``direction`` names ``input`` is read at once; one
without a ``direction`` only if the app listens to it (an HTTP app's ``OPTIONS /<route>``, a
gRPC app's ``ListInputBindings``; asked in the background, while the app is not up yet, for
:attr:`DiscoveryPolicy.window` seconds). Each event goes to the app under the binding's
inbound resiliency policy; the app's answer acks it or fails it (the binding decides what a
failure means: a broker redelivers, cron only logs). A gRPC app's answer naming output
bindings (``to``) has its data sent to them with operation ``create``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Mapping
from typing import Any

from pylotto.appchannel.bindings import BindingAnswer, BindingChannel
from pylotto.capabilities.base import Capability, ComponentSet, RuntimeContext
from pylotto.capabilities.pubsub import DiscoveryPolicy
from pylotto.components.base import Component
from pylotto.components.bindings.base import (
    INPUT,
    OUTPUT,
    BindingRequest,
    BindingResponse,
    BindingSettings,
    InputBinding,
    InputEvent,
    OutputBinding,
    directions,
)
from pylotto.core.errors import Internal, InvalidArgument, PylottoError
from pylotto.core.tasks import stop_task
from pylotto.observability.throttled import ThrottledLog

log = logging.getLogger("pylotto.capabilities.bindings")

STOP_DRAIN_SECONDS = 5.0
"""How long a stop waits for the events in flight to be answered before it cancels them."""


class BindingsCapability(Capability[Component]):
    """No binding configured: NotConfigured; unknown name (or an input-only binding):
    ComponentNotFound; empty or unsupported operation: InvalidArgument (the message lists the
    supported ones)."""

    def __init__(self, components: ComponentSet[Component], context: RuntimeContext, *,
                 channel: BindingChannel | None = None,
                 discovery: DiscoveryPolicy | None = None, **policies: Any) -> None:
        super().__init__(components, context, **policies)
        self.channel = channel
        """Where the events of input bindings go (None: the app has no Dapr channel)."""
        self.discovery = discovery or DiscoveryPolicy()
        self.reading: dict[str, asyncio.Task[None]] = {}
        """Input binding name → the task reading it (asking the app first)."""
        self._in_flight: dict[str, int] = {}
        self._drained: dict[str, asyncio.Event] = {}
        self._closed: set[str] = set()
        self._failing: set[str] = set()
        self._throttled = ThrottledLog(log)

    # ---- output ------------------------------------------------------------------------------

    async def invoke(
        self, name: str, operation: str, data: bytes, metadata: Mapping[str, str]
    ) -> BindingResponse:
        component = self.components.get(name)
        if not isinstance(component, OutputBinding) or OUTPUT not in directions(component):
            raise self.components.lookup_error("not_found", name)
        binding = component
        if not operation:
            raise InvalidArgument(f"operation field is missing from request (binding {name})",
                                  where="bindings.invoke", name=name,
                                  detail="operation field is missing from request")
        if operation not in binding.operations:
            supported = ", ".join(binding.operations)
            raise InvalidArgument(
                f"binding {name} does not support operation {operation}. "
                f"supported operations: {supported}",
                where="bindings.invoke", name=name,
                detail=f"binding {name} does not support operation {operation}. "
                       f"supported operations:{' '.join(binding.operations)}",
            )
        request = BindingRequest(operation, data, dict(metadata))
        try:
            return await self.call(name, lambda: binding.invoke(request), operation)
        except PylottoError as err:
            raise err.at("bindings.invoke", name=name) from None

    # ---- input -------------------------------------------------------------------------------

    def inputs(self) -> list[str]:
        """The names of the input bindings (whether the app listens to them or not)."""
        return [name for name, c in self.components.items()
                if isinstance(c, InputBinding) and INPUT in directions(c)]

    async def start(self) -> None:
        for name in self.inputs():
            await self.attach(name)

    async def stop(self) -> None:
        for name in list(self.reading):
            await self.detach(name)

    async def attach(self, component_name: str) -> None:
        """Begin reading input binding ``component_name`` (nothing for another binding)."""
        if component_name not in self.inputs() or component_name in self.reading:
            return
        if self.channel is None:
            log.warning("input binding %s not read: no app to deliver to (set app.port; "
                        "Layotto's AppCallback has no input bindings)", component_name)
            return
        self._closed.discard(component_name)
        self.reading[component_name] = asyncio.create_task(
            self._run(component_name), name=f"binding {component_name}")

    async def detach(self, component_name: str) -> None:
        """Stop reading ``component_name``: new events are refused, those in flight get
        :data:`STOP_DRAIN_SECONDS` to be answered, then the reading is cancelled."""
        task = self.reading.pop(component_name, None)
        if task is None:
            return
        self._closed.add(component_name)
        drained = self._drained.get(component_name)
        if drained is not None and self._in_flight.get(component_name):
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(STOP_DRAIN_SECONDS):
                    await drained.wait()
        await stop_task(task)

    def _route(self, name: str) -> str:
        settings = self.components.get(name).settings
        route = settings.route if isinstance(settings, BindingSettings) else ""
        return route or name

    def _explicit_input(self, name: str) -> bool:
        settings = self.components.get(name).settings
        return isinstance(settings, BindingSettings) and INPUT in settings.directions()

    async def _run(self, name: str) -> None:
        assert self.channel is not None
        component = self.components.get(name)
        assert isinstance(component, InputBinding)
        if not self._explicit_input(name) and not await self._app_listens(name):
            return
        log.info("input binding %s: reading (events to %s /%s)", name,
                 self.channel.description, self._route(name).lstrip("/"))
        self._in_flight[name] = 0
        self._drained[name] = asyncio.Event()
        try:
            await component.read(lambda event: self._deliver(name, event))
        except PylottoError as err:
            log.error("input binding %s: reading stopped: %s", name, err.message)

    async def _app_listens(self, name: str) -> bool:
        """Ask the app whether it listens to ``name`` until it answers or the discovery
        window closes."""
        assert self.channel is not None
        route = self._route(name)
        deadline = time.monotonic() + self.discovery.window
        delay = self.discovery.initial_interval
        while True:
            try:
                listens = await self.channel.listens(name, route)
            except PylottoError as err:
                if time.monotonic() >= deadline:
                    log.error("input binding %s not read: %s still not reachable after %.0fs "
                              "(%s)", name, self.channel.description, self.discovery.window,
                              err.message)
                    return False
                log.debug("input binding %s: app not reachable yet: %s", name, err.message)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.discovery.max_interval)
                continue
            if not listens:
                log.info("app has not subscribed to binding %s.", name)
            return listens

    async def _deliver(self, name: str, event: InputEvent) -> bytes:
        """The handler every input binding calls: one event to the app."""
        assert self.channel is not None
        if name in self._closed:
            raise Internal(f"input binding {name} is closed")
        channel = self.channel
        route = self._route(name)
        self._in_flight[name] = self._in_flight.get(name, 0) + 1
        self._drained.setdefault(name, asyncio.Event()).clear()
        started = time.perf_counter()
        outcome = "ok"
        try:
            answer = await self.resiliency.call_inbound(
                name, lambda: channel.deliver(name, route, event.data, event.metadata))
        except PylottoError as err:
            outcome = type(err).__name__
            self._failed(name, err)
            raise
        finally:
            self._in_flight[name] -= 1
            if not self._in_flight[name]:
                self._drained[name].set()
            if self.metrics is not None:
                seconds = time.perf_counter() - started
                self.metrics.component_call(f"input binding {name}", outcome, seconds)
                self.metrics.dapr.input_binding(name, outcome == "ok", seconds)
        if name in self._failing:
            self._failing.discard(name)
            log.info("input binding %s: the app takes events again", name)
        if answer.to:
            await self._send_on(name, answer)
        return answer.data

    def _failed(self, name: str, err: PylottoError) -> None:
        """Said once a minute per binding while its events fail (daprd: at debug level)."""
        self._failing.add(name)
        self._throttled.warning(f"binding {name}", "input binding %s: the app failed an "
                                "event: %s", name, err.message)

    async def _send_on(self, name: str, answer: BindingAnswer) -> None:
        """A gRPC app's ``to``: its data (as JSON: ``null`` when it is not JSON, as daprd)
        sent to each output binding with operation ``create``."""
        try:
            parsed = json.loads(answer.data) if answer.data else None
        except ValueError:
            parsed = None
        data = json.dumps(parsed, separators=(",", ":"), sort_keys=True).encode()

        async def send(target: str) -> None:
            await self.invoke(target, "create", data, {})

        if answer.parallel:
            results = await asyncio.gather(*(send(t) for t in answer.to), return_exceptions=True)
            for target, result in zip(answer.to, results, strict=True):
                if isinstance(result, PylottoError):
                    log.error("input binding %s: sending the app's answer to %s: %s", name,
                              target, result.message)
            return
        for target in answer.to:
            try:
                await send(target)
            except PylottoError as err:
                log.error("input binding %s: error executing app response: %s", name,
                          err.message)
                return
