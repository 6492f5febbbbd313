"""Placement of actors across the sidecars of one app id, with no placement service: daprd's
ring over a member document, and leases on hash partitions, both in the actor state store
(docs/design/actors.md §4.1). :class:`LeasedPlacement` is the :class:`Placement` they make."""

from pylotto.capabilities.actors.placement.clock import Clock, SystemClock
from pylotto.capabilities.actors.placement.leased import LeasedPlacement

__all__ = ["Clock", "LeasedPlacement", "SystemClock"]
