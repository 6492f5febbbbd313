"""The resolver contract."""

from __future__ import annotations

import abc


class Resolver(abc.ABC):
    """Addresses (``host:port`` of a sidecar's gRPC API) for an app id."""

    announces = False
    """True for a registry: :meth:`start` announces this sidecar's address to the others."""

    async def start(self, app_id: str, address: str) -> None:  # noqa: B027 - optional hook
        """Begin serving (a registry registers ``address`` under ``app_id``)."""

    async def stop(self) -> None:  # noqa: B027 - optional hook
        """Leave (a registry removes this sidecar)."""

    @abc.abstractmethod
    async def resolve(self, app_id: str) -> list[str]:
        """Every known address of ``app_id`` (empty when none)."""
