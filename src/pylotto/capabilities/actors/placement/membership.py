"""The member document ``_actors.<appid>.members`` in the actor state store:
``{address: {"types": [...], "until": wall seconds}}``.

Each member that hosts actor types writes its own entry (compare-and-set on the document's
etag, retried until no other writer came in between) every ``lease/3``; every member reads the
whole document every poll. An entry whose ``until`` has passed no longer counts: a SIGKILLed
member drops out of everybody's ring ``lease`` seconds after its last renewal. Writers prune
entries expired for longer than a lease, so the document stays small.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from pylotto.capabilities.actors.placement.clock import Clock
from pylotto.capabilities.state import StateCapability, StateItem
from pylotto.components.state.base import Concurrency
from pylotto.core.errors import EtagMismatch

Members = dict[str, "Member"]


@dataclass(frozen=True, slots=True)
class Member:
    address: str
    types: frozenset[str]
    until: float
    """Wall-clock seconds the entry counts until."""

    def dumps(self) -> dict[str, object]:
        return {"types": sorted(self.types), "until": self.until}


def _loads(raw: bytes) -> Members:
    if not raw:
        return {}
    doc = json.loads(raw)
    return {address: Member(address, frozenset(entry.get("types", ())),
                            float(entry.get("until", 0.0)))
            for address, entry in doc.items() if isinstance(entry, dict)}


def hosting(members: Iterable[Member], actor_type: str, now: float) -> list[str]:
    """The addresses of the live members hosting ``actor_type`` at wall time ``now``."""
    return [m.address for m in members if m.until > now and actor_type in m.types]


class Membership:
    """Member ``address``'s view of, and entry in, app ``app_id``'s member document."""

    def __init__(self, state: StateCapability, store: str, app_id: str, address: str,
                 lease: float, clock: Clock) -> None:
        self.state, self.store = state, store
        self.key = f"_actors.{app_id}.members"
        self.address, self.lease, self.clock = address, lease, clock

    async def read(self) -> Members:
        """Every entry of the document, expired ones included (:func:`hosting` filters)."""
        got = await self.state.get_state(self.store, self.key)
        return _loads(got.value)

    async def _change(self, change: Callable[[Members], None]) -> Members:
        """Apply ``change`` to the document until no other writer came in between; the
        document as written."""
        while True:
            got = await self.state.get_state(self.store, self.key)
            members = _loads(got.value)
            change(members)
            now = self.clock.wall()
            members = {a: m for a, m in members.items()
                       if m.until > now - self.lease or a == self.address}
            item = StateItem(
                self.key, json.dumps({a: m.dumps() for a, m in members.items()},
                                     separators=(",", ":")).encode(),
                etag=got.etag,
                concurrency=Concurrency.FIRST_WRITE if got.etag is None
                else Concurrency.UNSPECIFIED)
            try:
                await self.state.save_state(self.store, [item])
                return members
            except EtagMismatch:
                await asyncio.sleep(random.uniform(0, 0.01))  # another writer: let it pass

    async def renew(self, types: Iterable[str]) -> Members:
        """Write this member's entry, hosting ``types``, valid for a lease from now."""
        entry = Member(self.address, frozenset(types), self.clock.wall() + self.lease)

        def put(members: Members) -> None:
            members[self.address] = entry

        return await self._change(put)

    async def leave(self) -> Members:
        """Remove this member's entry (an orderly stop)."""
        def drop(members: Members) -> None:
            members.pop(self.address, None)

        return await self._change(drop)
