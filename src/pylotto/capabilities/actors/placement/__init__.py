"""Which sidecar runs which actor (docs/design/actors.md §4.1): :class:`SingleMember` for one
sidecar (everything hosted here is local); the lease-based placement across sidecars lives
beside it (ring.py, membership.py, leases.py)."""

from pylotto.capabilities.actors.placement.single import SingleMember

__all__ = ["SingleMember"]
