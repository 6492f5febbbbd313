"""Partition leases in the actor state store: ``_actors.<appid>.part.<type>#<p>`` =
``{"owner", "until", "epoch", "instance"}`` (docs/design/actors.md §4.1).

Only the holder of a partition's lease runs that partition's actors. Every write is a
compare-and-set on the etag just read, so of two sidecars racing for a lease one wins:

- **take**: a lease that was never written (first-write), was released (``owner`` empty), or
  expired: ``until + skew`` passed by this sidecar's wall clock (the holder's clock may be up
  to ``skew`` ahead). The epoch goes up by one on every take.
- **renew**: all held leases in one transaction (of up to ``RENEW_CHUNK``) every
  ``lease/3`` (one per lease as a fallback when another writer got in first). A renewal
  sent at monotonic ``t`` makes the lease valid here until ``t + lease - margin``: the
  holder stops before any taker can start, as long as the clocks differ by less than
  ``skew`` and no pause outlasts ``margin``.
- **release**: after the actors of the partition were halted, the record is marked free
  (not deleted: its epoch keeps counting up), again under the etag read, so a release never
  frees a lease that somebody else holds by now.

A record is this sidecar's only with its ``owner`` address **and** ``instance`` (a random id
per process): a restarted sidecar on the same address waits for its former lease to expire
like anybody else, since the process before may still be running down.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from pylotto.capabilities.actors.placement.clock import Clock
from pylotto.capabilities.state import StateCapability, StateItem, StateOperation
from pylotto.components.state.base import Concurrency
from pylotto.core.errors import EtagMismatch, PylottoError, Unavailable

log = logging.getLogger("pylotto.actors.leases")

RENEW_CHUNK = 100
"""Leases per renewal transaction (etcd takes at most 128 operations in one)."""


@dataclass(frozen=True, slots=True)
class LeaseRecord:
    owner: str
    """The holder's address; "" when released."""
    until: float
    """Wall-clock seconds the holder may keep it until without a renewal."""
    epoch: int
    instance: str = ""

    @property
    def free(self) -> bool:
        return not self.owner

    def dumps(self) -> bytes:
        return json.dumps({"owner": self.owner, "until": self.until, "epoch": self.epoch,
                           "instance": self.instance}, separators=(",", ":")).encode()

    @staticmethod
    def loads(raw: bytes) -> LeaseRecord | None:
        if not raw:
            return None
        doc = json.loads(raw)
        return LeaseRecord(str(doc.get("owner", "")), float(doc.get("until", 0.0)),
                           int(doc.get("epoch", 0)), str(doc.get("instance", "")))


@dataclass(frozen=True, slots=True)
class Read:
    """A lease record (None: never written) and the etag it was read with."""

    record: LeaseRecord | None
    etag: str | None


@dataclass(slots=True)
class Held:
    epoch: int
    valid_until: float
    """Monotonic seconds this sidecar may run the partition's actors until."""


class Leases:
    """The leases member ``address`` holds, takes, renews and releases."""

    def __init__(self, state: StateCapability, store: str, app_id: str, address: str, *,
                 lease: float, skew: float, clock: Clock, margin: float | None = None,
                 instance: str | None = None) -> None:
        self.state, self.store = state, store
        self.base = f"_actors.{app_id}.part."
        self.address, self.clock = address, clock
        self.lease, self.skew = lease, skew
        self.margin = lease / 5 if margin is None else margin
        self.instance = instance or uuid.uuid4().hex
        self.held: dict[str, Held] = {}
        """Partition name (``<type>#<p>``) → what this sidecar holds, valid or lapsed."""
        self._writing = asyncio.Lock()

    def key(self, name: str) -> str:
        return self.base + name

    def valid(self, name: str) -> bool:
        """True while this sidecar may run the actors of partition ``name``."""
        held = self.held.get(name)
        return held is not None and self.clock.monotonic() < held.valid_until

    def mine(self, record: LeaseRecord | None, epoch: int | None = None) -> bool:
        return (record is not None and record.owner == self.address
                and record.instance == self.instance
                and (epoch is None or record.epoch == epoch))

    def takeable(self, record: LeaseRecord | None) -> bool:
        """Free, or expired by this sidecar's wall clock (with the skew allowed for)."""
        return (record is None or record.free
                or self.clock.wall() > record.until + self.skew)

    async def read(self, names: Iterable[str]) -> dict[str, Read]:
        chosen = list(names)
        if not chosen:
            return {}
        items = await self.state.get_bulk_state(self.store, [self.key(n) for n in chosen])
        out: dict[str, Read] = {}
        for name, item in zip(chosen, items, strict=True):
            if item.error:
                raise Unavailable(f"cannot read lease {name}: {item.error}",
                                  where="actors.placement")
            out[name] = Read(LeaseRecord.loads(item.value or b""),
                             item.etag if item.value else None)
        return out

    def _item(self, name: str, record: LeaseRecord, etag: str | None) -> StateItem:
        return StateItem(self.key(name), record.dumps(), etag=etag,
                         concurrency=Concurrency.FIRST_WRITE if etag is None
                         else Concurrency.UNSPECIFIED)

    async def take(self, names: Iterable[str],
                   known: dict[str, Read] | None = None) -> list[str]:
        """Take each of ``names`` that is takeable (read now unless ``known`` has it);
        the names taken."""
        async with self._writing:
            wanted = [n for n in names if not self.valid(n)]
            missing = [n for n in wanted if known is None or n not in known]
            current = dict(known or {})
            current.update(await self.read(missing))
            chosen = [n for n in wanted if self.takeable(current[n].record)
                      or self.mine(current[n].record)]
            taken = await asyncio.gather(*(self._take(n, current[n]) for n in chosen))
            return [n for n, ok in zip(chosen, taken, strict=True) if ok]

    async def _take(self, name: str, current: Read) -> bool:
        old = current.record
        held = self.held.get(name)
        if self.mine(old) and held is not None and old is not None and old.epoch == held.epoch:
            epoch = old.epoch  # still ours (a lapsed lease nobody took): renew it
        else:
            epoch = (old.epoch if old is not None else 0) + 1
        sent = self.clock.monotonic()
        record = LeaseRecord(self.address, self.clock.wall() + self.lease, epoch,
                             self.instance)
        try:
            await self.state.save_state(self.store, [self._item(name, record, current.etag)])
        except EtagMismatch:
            return False  # somebody else got in first
        self.held[name] = Held(epoch, sent + self.lease - self.margin)
        return True

    async def renew(self) -> list[str]:
        """Renew every held lease; the names found lost (taken by another sidecar), which
        are no longer held. A store failure leaves the leases to lapse (raised)."""
        async with self._writing:
            names = list(self.held)
            if not names:
                return []
            current = await self.read(names)
            lost = [n for n in names if not self.mine(current[n].record, self.held[n].epoch)]
            keep = [n for n in names if n not in lost]
            sent = self.clock.monotonic()
            until = self.clock.wall() + self.lease
            writes = {n: self._item(n, LeaseRecord(self.address, until, self.held[n].epoch,
                                                   self.instance), current[n].etag)
                      for n in keep}
            renewed: list[str] = []
            names_written = list(writes)
            for at in range(0, len(names_written), RENEW_CHUNK):
                chunk = {n: writes[n] for n in names_written[at:at + RENEW_CHUNK]}
                if len(chunk) == 1:
                    renewed.extend(await self._one_by_one(chunk))
                    continue
                try:
                    await self.state.execute_state_transaction(
                        self.store, [StateOperation("upsert", item) for item in chunk.values()])
                    renewed.extend(chunk)
                except EtagMismatch:
                    renewed.extend(await self._one_by_one(chunk))
            lost.extend(n for n in keep if n not in renewed)
            for name in renewed:
                self.held[name].valid_until = sent + self.lease - self.margin
            for name in lost:
                self.held.pop(name, None)
            return lost

    async def _one_by_one(self, writes: dict[str, StateItem]) -> list[str]:
        async def one(name: str, item: StateItem) -> bool:
            try:
                await self.state.save_state(self.store, [item])
            except EtagMismatch:
                return False
            return True

        done = await asyncio.gather(*(one(n, i) for n, i in writes.items()))
        return [n for n, ok in zip(writes, done, strict=True) if ok]

    async def release(self, names: Iterable[str]) -> None:
        """Give up ``names`` (their actors halted already): no longer held here, and each
        record that is still this sidecar's marked free."""
        async with self._writing:
            chosen = [n for n in names if n in self.held]
            epochs = {n: self.held.pop(n).epoch for n in chosen}
            if not chosen:
                return
            try:
                current = await self.read(chosen)
            except PylottoError as exc:  # the lease expires by itself
                log.warning("leases %s not released: %s", ", ".join(chosen), exc.message)
                return

            async def free(name: str) -> None:
                read = current[name]
                if not self.mine(read.record, epochs[name]):
                    return
                try:
                    await self.state.save_state(self.store, [self._item(
                        name, LeaseRecord("", 0.0, epochs[name]), read.etag)])
                except EtagMismatch:
                    pass  # taken meanwhile (it had expired): nothing of ours to free
                except PylottoError as exc:
                    log.warning("lease %s not released: %s", name, exc.message)

            await asyncio.gather(*(free(n) for n in chosen))
