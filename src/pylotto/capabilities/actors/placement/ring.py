"""daprd's consistent-hash ring (docs/design/actors.md §4.1), recomputed by every sidecar from
the member document: no placement service hands it out.

The definition is daprd's (dapr/dapr ``pkg/placement/hashing``): ``hash(k)`` is the first 8
bytes, little-endian, of BLAKE2b-512 of ``k``; each member address ``a`` has ``VNODES`` (100)
points ``hash(a + str(i))`` on the ring; a key belongs to the first point at or after its
hash, wrapping round to the first point. Equal rings (same members) name the same owner
everywhere, and adding or removing one member moves only the keys of its arcs.

pylotto does not place actor ids on the ring directly: ids go to ``partitions`` hash
partitions (:func:`partition`), and the ring places the partitions, keyed ``<type>#<p>``, over
the members that host the type. A partition is then leased by the member the ring names.
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Iterable
from functools import lru_cache

VNODES = 100
"""Virtual nodes per member (daprd's ``replicationFactor`` default)."""


def hash64(key: str) -> int:
    """daprd's ring hash: BLAKE2b-512 of the UTF-8 ``key``, first 8 bytes as little-endian."""
    return int.from_bytes(hashlib.blake2b(key.encode()).digest()[:8], "little")


@lru_cache(maxsize=1024)
def vnode_hashes(address: str, vnodes: int = VNODES) -> tuple[int, ...]:
    """The ring points of member ``address`` (cached: members change rarely)."""
    return tuple(hash64(f"{address}{i}") for i in range(vnodes))


def partition(actor_id: str, partitions: int) -> int:
    """The hash partition of an actor id (the same for every sidecar)."""
    return hash64(actor_id) % partitions


def partition_key(actor_type: str, part: int) -> str:
    """The ring key (and lease name) of partition ``part`` of ``actor_type``."""
    return f"{actor_type}#{part}"


class Ring:
    """The ring over ``members`` (addresses); :meth:`owner` of a key."""

    __slots__ = ("_owners", "_points", "members")

    def __init__(self, members: Iterable[str], vnodes: int = VNODES) -> None:
        self.members = frozenset(members)
        placed: dict[int, str] = {}
        # in sorted order, so a (vanishingly rare) collision resolves the same everywhere
        for address in sorted(self.members):
            for point in vnode_hashes(address, vnodes):
                placed[point] = address
        self._points = sorted(placed)
        self._owners = [placed[p] for p in self._points]

    def __bool__(self) -> bool:
        return bool(self._points)

    def owner(self, key: str) -> str | None:
        """The member ``key`` belongs to (None: the ring is empty)."""
        if not self._points:
            return None
        at = bisect.bisect_left(self._points, hash64(key))
        return self._owners[at if at < len(self._points) else 0]
