"""SayHello: greet through a ``hello`` component chosen by ``service_name``."""

from __future__ import annotations

from pylotto.capabilities.base import Capability
from pylotto.components.hello.base import HelloService


class HelloCapability(Capability[HelloService]):
    """Looks the service up by name (no service: NotConfigured; unknown: ComponentNotFound).

    The request's opaque ``data`` is echoed back unchanged by the facade; it carries no rule.
    """

    async def say_hello(self, service_name: str, name: str) -> str:
        return await self.components.get(service_name).hello(name)
