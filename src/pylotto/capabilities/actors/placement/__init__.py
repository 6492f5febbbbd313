"""Which sidecar runs which actor (docs/design/actors.md §4.1): :class:`SingleMember` for one
sidecar (everything hosted here is local), and :class:`LeasedPlacement` across the sidecars
of one app id with no placement service: daprd's ring over a member document, and leases on
hash partitions, both in the actor state store (ring.py, membership.py, leases.py)."""

from pylotto.capabilities.actors.placement.clock import Clock, SystemClock
from pylotto.capabilities.actors.placement.leased import LeasedPlacement
from pylotto.capabilities.actors.placement.single import SingleMember

__all__ = ["Clock", "LeasedPlacement", "SingleMember", "SystemClock"]
