"""Hello service contract: answer a greeting for a name (Layotto's quick-start API)."""

from __future__ import annotations

import abc

from pylotto.components.base import Component


class HelloService(Component):
    """A component that greets; addressed by ``service_name`` in SayHello."""

    @abc.abstractmethod
    async def hello(self, name: str) -> str:
        """The greeting for ``name`` (``name`` may be empty)."""
