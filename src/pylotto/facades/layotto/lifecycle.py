"""Layotto's ``spec.proto.runtime.v1.Lifecycle`` (ApplyConfiguration) on the Layotto gRPC port.

As Layotto's servicer (pkg/grpc/lifecycle at f9681450): ``kind``, ``name`` and ``metadata`` are
required (INVALID_ARGUMENT "field kind is not configured"), a component that is not there is
INVALID_ARGUMENT "component not found. kind: state , name: x", and what the component says when
it refuses the configuration is passed on as a plain error (UNKNOWN, with the reason). The
change itself is the hot reload's (:meth:`pylotto.process.runtime.Runtime.reconfigure`): the
metadata is validated, a new instance is started next to the old one and swapped in; a
refused configuration changes nothing. Where Layotto reconfigures only components written to
be reconfigured (its helloworld), pylotto reconfigures any component (docs/operations.md).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from pylotto.config.layotto import SECTIONS
from pylotto.core.errors import (
    ComponentNotFound,
    ConfigError,
    InvalidArgument,
    PlainError,
    Unsupported,
)
from pylotto.core.registry import CAPABILITIES
from pylotto.observability.throttled import ThrottledLog
from pylotto.proto.layotto import lifecycle_pb2, lifecycle_pb2_grpc

SERVICE = lifecycle_pb2.DESCRIPTOR.services_by_name["Lifecycle"].full_name

log = logging.getLogger("pylotto.lifecycle")
refusals = ThrottledLog(log)
"""A refused configuration: one warning per component and interval (the caller has the
reason in its answer)."""

Reconfigure = Callable[[str, str, dict[str, str]], Awaitable[bool]]
"""(capability, name, whole new metadata) → whether anything changed; raises ComponentNotFound
or ConfigError (:meth:`Runtime.reconfigure <pylotto.process.runtime.Runtime.reconfigure>`)."""


def capability_of(kind: str) -> str | None:
    """The pylotto capability of ``kind``: a Layotto config section (``pub_subs``, ``hellos``,
    ``config_store``...) or a pylotto capability name (``pubsub``)."""
    return SECTIONS.get(kind) or (kind if kind in CAPABILITIES else None)


class LifecycleServicer(lifecycle_pb2_grpc.LifecycleServicer):
    def __init__(self, reconfigure: Reconfigure, *, workers: bool = False,
                 hot_reload: bool = True) -> None:
        self.reconfigure = reconfigure
        self.workers = workers
        """True under ``--workers``: a call would reach one worker process only."""
        self.hot_reload = hot_reload
        """False with ``--no-hot-reload``: components are not changed while running."""

    async def ApplyConfiguration(self, request: lifecycle_pb2.DynamicConfiguration,
                                 context: Any) -> lifecycle_pb2.ApplyConfigurationResponse:
        given = request.component_config
        for field in ("kind", "name"):
            if not request.HasField("component_config") or not getattr(given, field):
                raise InvalidArgument(f"field {field} is not configured")
        if not given.metadata:
            raise InvalidArgument("field metadata is not configured")
        kind, name = given.kind, given.name
        not_found = f"component not found. kind: {kind} , name: {name}"
        capability = capability_of(kind)
        if capability is None:
            raise ComponentNotFound(f"{not_found} (unknown kind; kinds: "
                                    f"{', '.join(SECTIONS)})", where="lifecycle", name=name)
        if not self.hot_reload:
            raise Unsupported("ApplyConfiguration is off: hot reload is off (--no-hot-reload / "
                              "hot_reload.enabled: false), components are not changed while "
                              "running")
        if self.workers:
            raise Unsupported("ApplyConfiguration is not served with --workers: it would "
                              "change the component of one worker process only")
        try:
            changed = await self.reconfigure(capability, name, dict(given.metadata))
        except ComponentNotFound:
            raise ComponentNotFound(not_found, where="lifecycle", name=name) from None
        except ConfigError as exc:
            refusals.warning(f"{capability}.{name}", "ApplyConfiguration %s.%s refused: %s; "
                             "the running component is kept", kind, name, exc.message)
            raise ConfigError(exc.message, where="lifecycle",
                              name=name).answered(PlainError) from None
        if changed:
            log.info("ApplyConfiguration: %s.%s reconfigured", capability, name)
        return lifecycle_pb2.ApplyConfigurationResponse()
