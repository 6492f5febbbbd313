"""``mdns``: sidecars on one machine find each other with no configuration, as Dapr's
self-hosted mDNS name resolution does (``dapr run`` apps invoke each other by app id).

Each sidecar with an app id announces itself as a DNS-SD service ``_pylotto._tcp.local.``
(instance ``<app id>-<random>``, TXT ``appid=<app id>``, the address other sidecars call it
at); each sidecar browses that service type and keeps every instance it sees, by app id. A
sidecar that stops withdraws its record at once (mDNS goodbye); one that died drops out when its
record's TTL ends. An app id not seen yet is asked for (a query) and waited for up to
``resolveTimeout`` (default ``1s``).

Without an app id there is nothing to announce, and the browsing (the multicast socket, and
``zeroconf`` itself, ~4 MB of memory) starts at the first lookup instead of at start: a sidecar
that never invokes another app id never loads it (the embedded default). That first lookup
waits, within ``resolveTimeout``, for the answers to the browser's first query, as a lookup of
an app id not seen yet always does.

Metadata: ``interfaces`` (default ``loopback``: announce and listen on 127.0.0.1 only, so the
sidecar is visible to the apps of this machine and nowhere else; ``all``: every interface, as
Dapr does) and ``resolveTimeout``.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import uuid
from collections.abc import Mapping
from typing import Any

from pydantic import Field

from pylotto.core.errors import ConfigError, Unavailable
from pylotto.core.metadata import ComponentSettings, Duration, decode
from pylotto.resolution.base import Resolver

log = logging.getLogger("pylotto.resolution.mdns")

SERVICE_TYPE = "_pylotto._tcp.local."
APP_ID_KEY = b"appid"


class MdnsSettings(ComponentSettings):
    interfaces: str = Field("loopback", pattern="^(loopback|all)$")
    resolve_timeout: Duration = Field(1.0, alias="resolveTimeout", gt=0)


def _instance_label(app_id: str) -> str:
    """A DNS label (63 bytes at most) naming one sidecar of ``app_id``."""
    suffix = uuid.uuid4().hex[:8]
    head = "".join(c if c.isalnum() or c == "-" else "-" for c in app_id)[:50]
    return f"{head}-{suffix}"


def _split(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    host = host.strip("[]")
    if not port.isdigit():
        raise ConfigError(f"name_resolution mdns: cannot announce address {address!r}")
    return host, int(port)


class MdnsResolver(Resolver):
    announces = True

    def __init__(self, metadata: Mapping[str, Any]) -> None:
        self.settings = decode(MdnsSettings, metadata, component="name_resolution")
        self._zc: Any = None
        self._browser: Any = None
        self._info: Any = None
        self._instances: dict[str, tuple[str, str]] = {}
        """Instance name → (app id, address) of every sidecar seen."""
        self._gone: set[str] = set()
        """Instances withdrawn: a lookup still under way for one must not bring it back."""
        self._changed = asyncio.Event()
        self._announce: asyncio.Task[None] | None = None
        self._registered = False
        self._serving = False
        """Between :meth:`start` and :meth:`stop`: a lookup may open the browser."""

    async def start(self, app_id: str, address: str) -> None:
        self._serving = True
        if app_id and address:
            self._open()
            self._announce = asyncio.create_task(self._register(app_id, address))

    def _open(self) -> None:
        """Join mDNS and browse (once; synchronous, so two lookups cannot both open)."""
        if self._zc is not None:
            return
        from zeroconf import InterfaceChoice, IPVersion
        from zeroconf.asyncio import AsyncServiceBrowser, AsyncZeroconf

        interfaces: Any = (["127.0.0.1"] if self.settings.interfaces == "loopback"
                           else InterfaceChoice.All)
        self._zc = AsyncZeroconf(interfaces=interfaces, ip_version=IPVersion.V4Only)
        self._browser = AsyncServiceBrowser(self._zc.zeroconf, SERVICE_TYPE,
                                            handlers=[self._on_change])

    async def _register(self, app_id: str, address: str) -> None:
        from zeroconf.asyncio import AsyncServiceInfo

        host, port = _split(address)
        if host == "localhost":  # never a wildcard: resolution/advertise.py decides
            host = "127.0.0.1"
        label = _instance_label(app_id)
        self._info = AsyncServiceInfo(
            SERVICE_TYPE, f"{label}.{SERVICE_TYPE}", port=port,
            addresses=[socket.inet_aton(host)], server=f"{label}.local.",
            properties={APP_ID_KEY: app_id.encode()})
        try:
            # returns once the records are in place; the awaitable it returns, once announced
            announced = await self._zc.async_register_service(self._info,
                                                              allow_name_change=True)
            self._registered = True
            await announced
        except Exception as exc:  # the sidecar serves on; only discovery by others fails
            log.warning("name resolution mdns: cannot announce app %s: %s", app_id, exc)
            self._info = None
            return
        log.info("name resolution mdns: announced app %s at %s:%d", app_id, host, port)

    def _on_change(self, zeroconf: Any, service_type: str, name: str,
                   state_change: Any) -> None:
        from zeroconf import ServiceStateChange

        if state_change is ServiceStateChange.Removed:
            self._gone.add(name)
            self._instances.pop(name, None)
            return
        self._gone.discard(name)
        asyncio.get_running_loop().create_task(self._learn(name))

    async def _learn(self, name: str) -> None:
        from zeroconf.asyncio import AsyncServiceInfo

        info = AsyncServiceInfo(SERVICE_TYPE, name)
        if not await info.async_request(self._zc.zeroconf, 3000):
            return
        app_id = (info.properties or {}).get(APP_ID_KEY)
        addresses = info.parsed_addresses()
        if not app_id or not addresses or not info.port or name in self._gone:
            return
        self._instances[name] = (app_id.decode(), f"{addresses[0]}:{info.port}")
        self._changed.set()

    async def stop(self) -> None:
        self._serving = False
        if self._announce is not None:  # an announcement under way: the goodbye replaces it
            self._announce.cancel()
            await asyncio.gather(self._announce, return_exceptions=True)
        if self._zc is None:
            return
        if self._browser is not None:
            await self._browser.async_cancel()
        if self._info is not None and self._registered:
            withdrawn = await self._zc.async_unregister_service(self._info)
            await withdrawn  # the goodbye packets are out
        await self._zc.async_close()
        self._zc = None

    def _known(self, app_id: str) -> list[str]:
        return sorted({address for found, address in self._instances.values()
                       if found == app_id})

    async def resolve(self, app_id: str) -> list[str]:
        if self._serving and self._zc is None:
            try:
                self._open()
            except OSError as exc:  # at start, with an app id, this fails the sidecar's start
                raise Unavailable(f"name resolution mdns: cannot browse: {exc}",
                                  where="invoke.resolve") from None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.resolve_timeout
        while not (found := self._known(app_id)):
            left = deadline - loop.time()
            if left <= 0 or self._zc is None:
                return []
            self._changed.clear()
            try:
                async with asyncio.timeout(left):
                    await self._changed.wait()
            except TimeoutError:
                return []
        return found
