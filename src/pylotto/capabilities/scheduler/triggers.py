"""The scheduler's trigger pipeline (see service.py's docstring for the whole design): the run
loop takes up each trigger coming due, the claimer reads and claims the records of triggers
due together in bulk, each claimed trigger is delivered at its time (its lease renewed
meanwhile), and the finisher writes the delivered ones' next triggers in bulk.

:class:`TriggerPipeline` is the part of
:class:`~pylotto.capabilities.scheduler.service.SchedulerCapability` that does this; the
service keeps the API, the local view of the jobs (``_learn``, ``_at``, ``_unlist``) and the
store watching, and holds the state both share (set in its ``__init__``).
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import heapq
import itertools
import logging
import time
from dataclasses import replace
from datetime import UTC, datetime

from pylotto.appchannel.jobs import TRIGGER_CARRIER, JobChannel
from pylotto.capabilities.scheduler.job import JobRecord
from pylotto.capabilities.scheduler.store import SchedulerStore, Versioned
from pylotto.core.errors import PylottoError
from pylotto.core.tasks import stop_task
from pylotto.observability.metrics import Metrics
from pylotto.observability.tracing import Tracing

log = logging.getLogger("pylotto.scheduler")

CLAIM_AHEAD_SECONDS = 0.1
"""A trigger is claimed (its record read, then written under its etag) this long before its
time, and handed over at its time: the claim's two store round trips are not part of its
lateness (on a loaded machine they took tens of milliseconds, bench/scheduler.py)."""

CLAIM_BATCH = 256
"""Triggers claimed (or recorded after their delivery) per bulk get and bulk write."""

CLAIMED_PER_DELIVERY = 4
"""Triggers claimed and not yet recorded, at most, per delivery in flight (``max_in_flight``):
a claimed trigger waits for its time, then for a delivery slot."""

BATCH_ROUNDS = 3
"""Bulk writes tried for one batch, each over a fresh read of the records another writer
changed meanwhile, before they are written one by one."""

Writes = list[tuple[Versioned, JobRecord | None]]
"""Records to write over the ones read (None: delete the record)."""
Names = list[str]
"""(An alias: in the service, ``list`` is :meth:`SchedulerCapability.list`.)"""


def _now() -> datetime:
    return datetime.now(UTC)


class TriggerPipeline(abc.ABC):
    """Take up, claim, deliver and finish triggers (the state is the service's)."""

    instance: str
    poll: float
    lease: float
    metrics: Metrics | None
    tracing: Tracing
    delivered: int
    _known: dict[str, str]
    _next: dict[str, float]
    _heap: list[tuple[float, str]]
    _firing: dict[str, int]
    _taken: int
    _slots: asyncio.Semaphore
    _claimable: asyncio.Semaphore
    _to_claim: list[str]
    _claims_due: asyncio.Event
    _delivering: set[str]
    _finishing: dict[str, tuple[JobRecord, bool]]
    _finishes_due: asyncio.Event
    _wake: asyncio.Event
    _tasks: set[asyncio.Task[None]]

    @abc.abstractmethod
    def store(self) -> SchedulerStore: ...

    @abc.abstractmethod
    def _target(self, record: JobRecord) -> JobChannel | None: ...

    @abc.abstractmethod
    def _learn(self, record: JobRecord) -> None: ...

    @abc.abstractmethod
    def _at(self, name: str, when: float) -> None: ...

    @abc.abstractmethod
    def _unlist(self, name: str, generation: str | None) -> None: ...

    # ---- taking up the triggers coming due ------------------------------------------------

    async def _run(self) -> None:
        """Hand each trigger coming due (``CLAIM_AHEAD_SECONDS`` before its time) to the
        claimer, at most ``CLAIMED_PER_DELIVERY`` times ``max_in_flight`` at once."""
        while True:
            self._wake.clear()  # before looking: a job added from now on wakes the wait
            now = time.time()
            while self._heap and self._heap[0][0] - CLAIM_AHEAD_SECONDS <= now:
                when, name = heapq.heappop(self._heap)
                if self._next.get(name) != when or name in self._firing:
                    continue
                del self._next[name]
                self._taken += 1
                self._firing[name] = self._taken
                await self._claimable.acquire()
                self._to_claim.append(name)
                self._claims_due.set()
            wait = self._heap[0][0] - CLAIM_AHEAD_SECONDS - time.time() if self._heap else None
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(None if wait is None else max(wait, 0.0)):
                    await self._wake.wait()

    def _done(self, name: str) -> None:
        """``name``'s trigger is over (claimed or not): its next one may be taken up. Call it
        before learning the job's next trigger, in the same turn of the loop."""
        if self._firing.pop(name, None) is not None:
            self._claimable.release()

    # ---- claiming: the records of triggers due together, read and claimed in bulk --------

    async def _claim_loop(self) -> None:
        """Claim what the run loop handed over, in batches: the triggers that came due while
        the previous batch was being claimed go together (one bulk get, one bulk write)."""
        while True:
            await self._claims_due.wait()
            self._claims_due.clear()
            while self._to_claim:
                batch = self._to_claim[:CLAIM_BATCH]
                del self._to_claim[:CLAIM_BATCH]
                taken = {name: self._firing.get(name) for name in batch}
                try:
                    await self._claim(batch)
                except PylottoError as err:
                    log.warning("scheduler: cannot claim %d trigger(s) (%s, ...): %s",
                                len(batch), batch[0], err.message)
                    for name in batch:
                        if self._firing.get(name) == taken[name] \
                                and name not in self._delivering:
                            self._done(name)
                            self._at(name, time.time() + self.poll)

    async def _claim(self, names: Names) -> None:
        """Read the records of ``names`` in one bulk get and claim those due in one bulk
        write under the etags read; when another writer changed one of them meanwhile (the
        write fails as a whole), read them again and claim what is still to claim, then
        claim one by one."""
        store = self.store()
        pending = names
        for _ in range(BATCH_ROUNDS if store.batches else 0):
            found = await store.read_versioned(pending)
            writes = self._claims(found)
            if not writes:
                return
            left = await store.write_many(writes)
            failed = {id(write) for write in left}
            self._claimed([write for write in writes if id(write) not in failed])
            if not left:
                return
            pending = [current.record.spec.name for current, _ in left]
        found = await store.read_versioned(pending)
        for current, claimed in self._claims(found):
            if claimed is None:
                ok = await store.remove(current)
            else:
                ok = await store.replace(current, claimed)
            if ok:
                self._claimed([(current, claimed)])
            elif claimed is not None:  # someone else: look again
                self._done(current.record.spec.name)
                self._at(current.record.spec.name, time.time() + min(self.poll, 0.05))
            else:
                self._done(current.record.spec.name)

    def _claims(self, found: dict[str, Versioned | None]) -> Writes:
        """What to write for each trigger read (its claim, or None: delete the finished
        job); the others are settled here (their next trigger learnt, or left to the
        sidecar holding them)."""
        writes: Writes = []
        for name, current in found.items():
            if current is None:
                self._done(name)  # deleted; the index says so at the next refresh
                continue
            record = current.record
            if self._known.get(name) != record.generation:
                self._done(name)
                self._learn(record)
                continue
            now = _now()
            if record.next_at is None or (record.expiration is not None
                                          and now > record.expiration):
                writes.append((current, None))
                continue
            if record.next_at.timestamp() > time.time() + CLAIM_AHEAD_SECONDS:
                self._done(name)
                self._learn(record)
                continue
            if record.owner and record.lease_until > time.time():
                self._done(name)
                self._at(name, min(record.lease_until, time.time() + self.poll))
                continue
            if self._target(record) is None:
                self._done(name)
                continue  # not triggered from this sidecar
            writes.append((current, replace(record, owner=self.instance,
                                            lease_until=time.time() + self.lease)))
        return writes

    def _claimed(self, writes: Writes) -> None:
        """Deliver each trigger claimed (and drop each finished job deleted)."""
        for current, claimed in writes:
            name = current.record.spec.name
            if claimed is None:
                self._done(name)
                self._unlist(name, current.record.generation)
                continue
            self._delivering.add(name)
            task = asyncio.create_task(self._deliver(claimed), name=f"job {name}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    # ---- delivering ----------------------------------------------------------------------

    async def _deliver(self, claimed: JobRecord) -> None:
        """Hand ``claimed`` over at its time (renewing the lease meanwhile), then leave what
        came of it to the finisher."""
        name = claimed.spec.name
        target = self._target(claimed)
        assert target is not None and claimed.next_at is not None
        data = claimed.spec.data
        renewal = asyncio.create_task(self._renew(claimed), name=f"lease {name}")
        kind = claimed.spec.target or "app"
        due = claimed.next_at.timestamp()
        try:
            # claimed ahead: handed over at its time (again if the loop's clock woke it a
            # hair before the wall clock's)
            while (ahead := due - time.time()) > 0:  # noqa: ASYNC110 (a time, no event)
                await asyncio.sleep(ahead)
            async with self._slots:
                started = time.time()
                late = started - due
                with self.tracing.span("trigger job", "consumer", None,
                                       **{"job.name": name, "job.target": kind}):
                    token = TRIGGER_CARRIER.set(self.tracing.carrier()
                                                if self.tracing.enabled else None)
                    try:
                        delivered = await target.trigger(name, data.type_url if data else "",
                                                         data.value if data else b"")
                    except PylottoError as err:
                        log.warning("scheduler: job %s: %s", name, err.message)
                        delivered = False
                    finally:
                        TRIGGER_CARRIER.reset(token)
            if delivered:  # counted in the turn the app's answer came in
                self.delivered += 1
        finally:
            await stop_task(renewal)
        if self.metrics is not None:
            self.metrics.job_trigger(kind, "delivered" if delivered else "failed",
                                     time.time() - started, late)
        self._delivering.discard(name)
        self._finishing[name] = (claimed, delivered)
        self._finishes_due.set()

    async def _renew(self, claimed: JobRecord) -> None:
        """Extend the lease of a tick while its delivery lasts (a third of the lease before
        it ends), so only a dead sidecar's ticks are taken over, not a slow app's."""
        name = claimed.spec.name
        while True:
            await asyncio.sleep(self.lease / 3)
            try:
                current = await self.store().read(name)
                if current is None or current.record.owner != self.instance \
                        or current.record.generation != claimed.generation:
                    return
                await self.store().replace(current, replace(
                    current.record, lease_until=time.time() + self.lease))
            except PylottoError as err:
                log.warning("scheduler: job %s: cannot extend the lease: %s", name,
                            err.message)

    # ---- finishing: the next triggers of delivered ones, written in bulk -----------------

    async def _finish_loop(self) -> None:
        """Write what the deliveries ended with, in batches (those ended while the previous
        batch was written go together)."""
        while True:
            await self._finishes_due.wait()
            self._finishes_due.clear()
            await self._finish_pending()

    async def _finish_pending(self) -> None:
        while self._finishing:
            batch = dict(itertools.islice(self._finishing.items(), CLAIM_BATCH))
            for name in batch:
                del self._finishing[name]
            taken = {name: self._firing.get(name) for name in batch}
            try:
                await self._finish(batch)
            except PylottoError as err:
                log.warning("scheduler: cannot record %d trigger(s) (%s, ...): %s",
                            len(batch), next(iter(batch)), err.message)
                for name in batch:
                    if self._firing.get(name) == taken[name]:
                        self._done(name)
                        self._at(name, time.time() + self.poll)  # its lease ends meanwhile

    async def _finish(self, ended: dict[str, tuple[JobRecord, bool]]) -> None:
        """Read the records of ``ended`` in one bulk get, then write the next trigger of each
        still this sidecar's claim (or delete the finished job) in one bulk write under the
        etags read (on a conflict, as :meth:`_claim`)."""
        store = self.store()
        pending = list(ended)
        for _ in range(BATCH_ROUNDS if store.batches else 0):
            writes = self._afters(await store.read_versioned(pending), ended)
            if not writes:
                return
            left = await store.write_many(writes)
            failed = {id(write) for write in left}
            for current, after in (write for write in writes if id(write) not in failed):
                self._written(current, after)
            if not left:
                return
            pending = [current.record.spec.name for current, _ in left]
        for current, after in self._afters(await store.read_versioned(pending), ended):
            ok = await (store.remove(current) if after is None
                        else store.replace(current, after))
            if ok:
                self._written(current, after)
            else:
                self._done(current.record.spec.name)
                self._at(current.record.spec.name, time.time())

    def _afters(self, found: dict[str, Versioned | None],
                ended: dict[str, tuple[JobRecord, bool]]
                ) -> Writes:
        writes: Writes = []
        now = _now()
        for name, current in found.items():
            claimed, delivered = ended[name]
            if current is None or current.record.generation != claimed.generation \
                    or current.record.owner != self.instance:
                self._done(name)
                if current is not None:
                    self._learn(current.record)
                continue  # deleted, overwritten, or the lease went to another sidecar
            after = claimed.after_tick(now) if delivered else claimed.after_failure(now)
            writes.append((current, after if after.next_at is not None else None))
        return writes

    def _written(self, current: Versioned, after: JobRecord | None) -> None:
        name = current.record.spec.name
        self._done(name)
        if after is None:
            self._unlist(name, current.record.generation)
        else:
            self._learn(after)
