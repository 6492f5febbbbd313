"""``dns``: app ids are DNS names (Kubernetes services, docker-compose services...).

Metadata: ``template`` (default ``{app_id}``; e.g. ``{app_id}-dapr.default.svc.cluster.local``)
and ``port`` (the sidecars' gRPC port, default ``50001``). Every address the name resolves to is
one sidecar of the app; names are looked up on every call (the system resolver caches).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Mapping
from typing import Any

from pylotto.core.errors import ConfigError
from pylotto.resolution.base import Resolver


class DnsResolver(Resolver):
    def __init__(self, metadata: Mapping[str, Any]) -> None:
        self.template = str(metadata.get("template") or "{app_id}")
        if "{app_id}" not in self.template:
            raise ConfigError("name_resolution dns: template must contain {app_id}")
        try:
            self.port = int(metadata.get("port") or 50001)
        except ValueError:
            raise ConfigError("name_resolution dns: port must be a number") from None

    async def resolve(self, app_id: str) -> list[str]:
        name = self.template.replace("{app_id}", app_id)
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                name, self.port, type=socket.SOCK_STREAM)
        except socket.gaierror:
            return []
        hosts = sorted({str(info[4][0]) for info in infos})
        return [f"[{h}]:{self.port}" if ":" in h else f"{h}:{self.port}" for h in hosts]
