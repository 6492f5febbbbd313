"""Find pluggable components: every ``*.sock`` in the socket folder, asked by gRPC reflection
which services it serves; each known service becomes a component type named after the socket
(``redis-like.sock`` serving StateStore → ``state.redis-like``), as Dapr does.

Config loading resolves such a type by the socket file alone (``<folder>/<type>.sock``
exists); the component checks by reflection at ``init`` that the socket serves the service.
At start the runtime logs every type it finds (:func:`discover`).
"""

from __future__ import annotations

import asyncio
import importlib
import logging
from dataclasses import dataclass
from pathlib import Path

import grpc
import grpc.aio
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from pylotto.components.base import Component

log = logging.getLogger("pylotto.pluggable")

DEFAULT_SOCKET_FOLDER = "/tmp/dapr-components-sockets"

SERVICES: dict[str, tuple[str, str]] = {
    "dapr.proto.components.v1.StateStore":
        ("state", "pylotto.components.pluggable.state:PluggableStateStore"),
    "dapr.proto.components.v1.PubSub":
        ("pubsub", "pylotto.components.pluggable.pubsub:PluggablePubSub"),
    "dapr.proto.components.v1.OutputBinding":
        ("bindings", "pylotto.components.pluggable.bindings:PluggableOutputBinding"),
    "pylotto.proto.components.v1.LockStore":
        ("lock", "pylotto.components.pluggable.lock:PluggableLockStore"),
    "pylotto.proto.components.v1.Sequencer":
        ("sequencer", "pylotto.components.pluggable.sequencer:PluggableSequencer"),
}
"""Service name → (capability, adapter class) for every service the sidecar can adopt."""

ADAPTERS: dict[str, str] = {capability: target for capability, target in SERVICES.values()}

GENERIC_TYPES: dict[str, dict[str, str]] = {
    capability: {"pluggable": target} for capability, target in ADAPTERS.items()
}
"""``<capability>.pluggable``: the adapter itself, socket taken from metadata ``socketPath``."""

_folder = Path(DEFAULT_SOCKET_FOLDER)


def use_socket_folder(folder: str | Path) -> None:
    """Where discovered types are looked up (config: ``pluggable.socket_folder``)."""
    global _folder
    _folder = Path(folder)


def socket_folder() -> Path:
    return _folder


@dataclass(frozen=True)
class Discovered:
    capability: str
    type_name: str
    """Short type name: the socket file's stem."""
    socket: str


async def reflect_services(channel: grpc.aio.Channel, wait: float) -> list[str]:
    """Service names the server behind ``channel`` announces via gRPC reflection."""
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    call = stub.ServerReflectionInfo(iter([request]), timeout=wait)
    async for response in call:
        return [s.name for s in response.list_services_response.service]
    return []


async def discover(folder: str | Path | None = None, wait: float = 3.0) -> list[Discovered]:
    """Every adoptable service of every socket in ``folder`` (a missing folder: none).

    A socket that does not answer is logged and skipped: the others still count.
    """
    path = Path(folder) if folder is not None else _folder
    if not path.is_dir():
        return []
    found: list[Discovered] = []
    for sock in sorted(path.glob("*.sock")):
        try:
            async with grpc.aio.insecure_channel(f"unix://{sock}") as channel:
                async with asyncio.timeout(wait + 1):
                    names = await reflect_services(channel, wait)
        except (grpc.aio.AioRpcError, TimeoutError, OSError) as exc:
            log.warning("pluggable socket %s does not answer reflection: %s", sock, exc)
            continue
        for name in names:
            if name in SERVICES:
                found.append(Discovered(SERVICES[name][0], sock.stem, str(sock)))
    return found


def adapter_class(capability: str, socket: str) -> type[Component]:
    """The capability's adapter bound to ``socket`` (a subclass with ``default_socket``)."""
    module, _, name = ADAPTERS[capability].partition(":")
    base = getattr(importlib.import_module(module), name)
    cls: type[Component] = type(base.__name__, (base,), {
        "default_socket": socket, "__module__": base.__module__,
        "__doc__": f"{base.__doc__}\n\nBound to {socket}."})
    return cls


def socket_type(capability: str, type_name: str) -> type[Component] | None:
    """The class of ``<capability>.<type_name>`` when ``<folder>/<type_name>.sock`` exists."""
    if capability not in ADAPTERS or "/" in type_name:
        return None
    sock = _folder / f"{type_name}.sock"
    return adapter_class(capability, str(sock)) if sock.exists() else None


async def log_discovered(folder: str | Path | None = None) -> list[Discovered]:
    """Discover the socket folder and log each type found (called once at start)."""
    found = await discover(folder)
    for item in found:
        log.info("pluggable component type %s.%s at %s", item.capability, item.type_name,
                 item.socket)
    return found
