"""``static``: the addresses of each app id, written in the configuration::

    name_resolution:
      type: static
      metadata:
        apps:
          billing: [127.0.0.1:35001, 127.0.0.1:35002]
          catalog: 127.0.0.1:36001
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pylotto.core.errors import ConfigError
from pylotto.resolution.base import Resolver


class StaticResolver(Resolver):
    def __init__(self, metadata: Mapping[str, Any]) -> None:
        apps = metadata.get("apps") or {}
        if not isinstance(apps, Mapping):
            raise ConfigError("name_resolution static: metadata.apps must map app ids to "
                              "addresses")
        self.apps: dict[str, list[str]] = {}
        for app_id, addresses in apps.items():
            listed = [addresses] if isinstance(addresses, str) else list(addresses or [])
            for address in listed:
                host, sep, port = str(address).rpartition(":")
                if not sep or not host or not port.isdigit():
                    raise ConfigError(f"name_resolution static: app {app_id}: address "
                                      f"{address!r} is not host:port")
            self.apps[str(app_id)] = [str(a) for a in listed]

    async def resolve(self, app_id: str) -> list[str]:
        return list(self.apps.get(app_id, []))
