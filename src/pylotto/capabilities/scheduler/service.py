"""The scheduler: jobs kept in a state store, triggered once across the sidecars of an app id.

Every sidecar of the app id watches every job (every ``poll`` seconds it reads the index
shards' stamps and re-reads the shards whose stamp changed; see store.py) and keeps each job's
next trigger time. When one comes, the sidecar re-reads the job record and
**claims** the tick: it writes itself as the record's owner, with a lease of ``lease`` seconds,
under the etag it read. One writer wins; the others see the claim and look again. The winner
hands the trigger to its app, then writes the record's next trigger (or deletes the finished
job) under the etag of its claim. A sidecar that dies mid-delivery leaves its claim to expire:
another sidecar takes the tick then (at-least-once), within ``lease + poll`` seconds.

Triggers due together go together: a claimer task reads the records of every trigger that
came due while it claimed the previous batch in one bulk get and claims them in one bulk
write (one compare-and-set of every item on the stores the scheduler runs on), and a finisher
task writes the delivered ones' next triggers likewise (see :meth:`SchedulerStore.write_many`).

Missed triggers (every sidecar down, or the app failing longer than a tick): a tick fires
once when a sidecar is back, then the job goes on from the next tick after *now* — never once
per missed tick. See docs/scheduler.md. The trigger pipeline (take up, claim, deliver,
finish) is :class:`~pylotto.capabilities.scheduler.triggers.TriggerPipeline`.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import time
import uuid
from collections.abc import Mapping

from pylotto.appchannel.jobs import JobChannel
from pylotto.capabilities.base import RuntimeContext
from pylotto.capabilities.scheduler.job import (
    APP_TARGET,
    JobRecord,
    JobSpec,
    check_request,
    new_record,
    validate_name,
)
from pylotto.capabilities.scheduler.store import SHARDS, SchedulerStore, shard_of
from pylotto.capabilities.scheduler.triggers import CLAIMED_PER_DELIVERY, TriggerPipeline
from pylotto.capabilities.state import StateCapability
from pylotto.components.state.base import Feature
from pylotto.core.errors import (
    AlreadyExists,
    InvalidArgument,
    NotConfigured,
    NotFound,
    PylottoError,
)
from pylotto.core.tasks import stop_tasks
from pylotto.observability.metrics import Metrics
from pylotto.observability.tracing import Tracing

log = logging.getLogger("pylotto.scheduler")

POLL_SECONDS = 0.5
LEASE_SECONDS = 5.0
MAX_IN_FLIGHT = 64
FULL_READ_SECONDS = 60.0
"""Every sidecar re-reads every index shard this often, stamps changed or not (a writer
that died between a shard write and its stamp)."""
FLUSH_SECONDS = 2.0
"""Finished jobs leave the index in one batch this often (at 1,000 one-shot triggers a
second, every flush rewrites every shard: measured in bench/scheduler.py)."""
SHARDS_PER_READ = 4
"""Index shards read per bulk get by the refresh, each parsed and compared on its own turn of
the event loop: at 100,000 jobs a shard is ≈ 90 KB of JSON, and all 64 parsed in one go held
the trigger loop ≈ 100 ms (bench/scheduler.py)."""
LEARN_CHUNK = 500
"""Job records read (and learnt) per bulk get by the refresh."""
_UNREAD = "\0unread"


def _api_name(name: str) -> bool:
    """A job of the Jobs API, not one of :meth:`SchedulerCapability.schedule_internal`."""
    return "/" not in name


class SchedulerCapability(TriggerPipeline):
    """The Jobs API over the state store ``store_name`` (None: the first durable state store
    with etags), delivering to ``channel`` (None: this sidecar schedules but never triggers,
    as daprd without an app channel). ``targets``: where jobs of other targets go (target
    kind → channel; ``"pubsub"``: the delay queue's), scheduled by :meth:`schedule_internal`."""

    def __init__(self, state: StateCapability, context: RuntimeContext, *,
                 store_name: str | None = None, channel: JobChannel | None = None,
                 poll: float = POLL_SECONDS, lease: float = LEASE_SECONDS,
                 max_in_flight: int = MAX_IN_FLIGHT,
                 targets: Mapping[str, JobChannel] | None = None,
                 key_base: str | None = None, metrics: Metrics | None = None,
                 tracing: Tracing | None = None) -> None:
        self.state, self.context = state, context
        self.key_base = key_base
        """The prefix of the records' keys (None: the Jobs API's, ``_scheduler.<app>.``)."""
        self.metrics = metrics if metrics is not None else state.metrics
        """Trigger counts, answer times and lateness (default: the state capability's)."""
        self.tracing = tracing if tracing is not None else state.tracing
        """A consumer span per trigger handed over (default: the state capability's)."""
        self.store_name, self.channel = store_name, channel
        self.targets = dict(targets or {})
        self.poll, self.lease = poll, lease
        self.instance = uuid.uuid4().hex
        self._store: SchedulerStore | None = None
        self._known: dict[str, str] = {}
        """name → generation of every job this sidecar watches."""
        self._by_shard: list[set[str]] = [set() for _ in range(SHARDS)]
        """The names of ``_known``, by index shard."""
        self._stamps: list[str | None] = [_UNREAD] * SHARDS
        """Each shard's stamp when this sidecar last read it."""
        self._full_read_at = 0.0
        self._flush_at = 0.0
        self._migrated = False
        self._next: dict[str, float] = {}
        self._heap: list[tuple[float, str]] = []
        self._firing: dict[str, int] = {}
        """Triggers taken up and not yet over: name → the count it was taken up at (a
        batch that fails settles only its own triggers, not later ones of the same job)."""
        self._taken = 0
        self._slots = asyncio.Semaphore(max_in_flight)
        """Deliveries to the app in flight."""
        self._claimable = asyncio.Semaphore(CLAIMED_PER_DELIVERY * max_in_flight)
        """Triggers taken up by the run loop and not yet over."""
        self._to_claim: list[str] = []
        self._claims_due = asyncio.Event()
        self._delivering: set[str] = set()
        self._finishing: dict[str, tuple[JobRecord, bool]] = {}
        """Triggers delivered (or failed): the claim, and whether the app took it."""
        self._finishes_due = asyncio.Event()
        self._claiming: asyncio.Task[None] | None = None
        self._finishing_task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._polling: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._refresh_failing = False
        self._unlisting: dict[str, str | None] = {}
        """Names of finished jobs to drop from the index (in one write, by the run loop)."""
        self.delivered = 0
        """Triggers this sidecar handed to its app (and the app took)."""

    # ---- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        name = self.store_name or self._default_store()
        if name is None:
            log.info("scheduler: no durable state store with etags: the Jobs API is off")
            return
        try:
            store = self.state.components.get(name)
        except PylottoError as err:
            raise NotConfigured(f"scheduler.state_store {name!r}: {err.message}",
                                where="jobs.store") from None
        if not store.has(Feature.ETAG):
            raise NotConfigured(f"scheduler: state store {name} has no etags; the scheduler "
                                "needs them to claim triggers", where="jobs.store")
        self._store = SchedulerStore(self.state, name, self.context.app_id,
                                     key_base=self.key_base)
        await self._migrate()
        if self.channel is not None or self.targets:
            self._task = asyncio.create_task(self._run(), name="scheduler")
            self._polling = asyncio.create_task(self._poll_loop(), name="scheduler poll")
            self._claiming = asyncio.create_task(self._claim_loop(), name="scheduler claims")
            self._finishing_task = asyncio.create_task(self._finish_loop(),
                                                       name="scheduler finishes")
        log.info("scheduler: jobs in state store %s%s", name,
                 "" if self.channel else " (no app channel: triggers left to other sidecars)")

    def _default_store(self) -> str | None:
        for name, store in self.state.components.items():
            if store.has(Feature.ETAG) and not store.per_process:
                return name
        return None

    async def stop(self) -> None:
        await stop_tasks(self._task, self._polling, self._claiming, self._finishing_task)
        self._task = self._polling = self._claiming = self._finishing_task = None
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._store is not None:
            try:  # the deliveries that ended: their next triggers (the others keep claims)
                await self._finish_pending()
            except PylottoError as err:
                log.warning("scheduler: deliveries left unrecorded: %s", err.message)
            try:
                await self._flush_unlisted()
            except PylottoError as err:  # the next sidecar's refresh drops them
                log.warning("scheduler: finished jobs left in the index: %s", err.message)

    def _target(self, record: JobRecord) -> JobChannel | None:
        """Where ``record``'s triggers go; None: not from this sidecar."""
        kind = record.spec.target
        return self.channel if kind == APP_TARGET else self.targets.get(kind)

    def store(self) -> SchedulerStore:
        if self._store is None:
            raise NotConfigured("no state store for the scheduler is configured",
                                where="jobs.store")
        return self._store

    # ---- the API -----------------------------------------------------------------------------

    async def schedule(self, spec: JobSpec | None, overwrite: bool) -> None:
        spec = check_request(spec)
        await self._keep(new_record(spec), overwrite)

    async def schedule_internal(self, spec: JobSpec) -> None:
        """Keep a job of a target other than the app's, named ``<target>/<unique id>`` by
        the caller: a name the Jobs API refuses (``/``), so its calls never see it."""
        assert spec.target != APP_TARGET and spec.name.startswith(spec.target + "/")
        await self._keep(new_record(spec, check_name=False), overwrite=False)

    async def _keep(self, record: JobRecord, overwrite: bool) -> None:
        spec = record.spec
        store = self.store()
        if overwrite:
            await store.put(record)
        elif not await store.create(record):
            if await store.listed(spec.name) is not None:
                raise AlreadyExists(f"job already exists: {spec.name}", where="jobs.schedule",
                                    name=spec.name, detail="rpc error: code = AlreadyExists "
                                    "desc = job already exists")
            await store.put(record)  # a record never listed: a schedule that died half-way
        await store.enlist(spec.name, record.generation, stamped=self._stamped)
        self._learn(record)

    async def get(self, name: str) -> JobSpec:
        if not name:
            raise InvalidArgument("Name is empty", where="jobs.name_empty", name="")
        validate_name(name, "get")
        found = await self.store().read(name)
        if found is None:
            raise NotFound(f"job not found: {name}", where="jobs.get", name=name,
                           detail=f"rpc error: code = NotFound desc = job not found: {name}")
        return found.record.spec

    async def delete(self, name: str) -> None:
        if not name:
            raise InvalidArgument("Name is empty", where="jobs.name_empty", name="")
        validate_name(name, "delete")
        await self.store().delete(name)
        self._forget(name)

    async def delete_prefix(self, prefix: str) -> None:
        store = self.store()
        names = await store.index()
        matching = [n for n in names if n.startswith(prefix) and _api_name(n)]
        await store.unlist_many(dict.fromkeys(matching))  # one index write for them all
        for name in matching:
            await store.delete(name)
            self._forget(name)

    async def list(self) -> list[JobSpec]:
        store = self.store()
        names = await store.index()
        records = await store.read_many(sorted(names))
        return [r.spec for n, r in records.items()
                if r is not None and names[n] == r.generation and _api_name(n)]

    # ---- local view of the jobs --------------------------------------------------------------

    def _learn(self, record: JobRecord) -> None:
        name = record.spec.name
        self._known[name] = record.generation
        self._by_shard[shard_of(name)].add(name)
        if record.next_at is None or self._target(record) is None:
            self._next.pop(name, None)
            return
        self._at(name, record.next_at.timestamp())

    def _at(self, name: str, when: float) -> None:
        self._next[name] = when
        heapq.heappush(self._heap, (when, name))
        self._wake.set()

    def _unlist(self, name: str, generation: str | None) -> None:
        self._unlisting[name] = generation
        self._forget(name)

    async def _flush_unlisted(self) -> None:
        if not self._unlisting:
            return
        batch, self._unlisting = self._unlisting, {}
        try:
            await self.store().unlist_many(batch, stamped=self._stamped)
        except PylottoError:
            self._unlisting = {**batch, **self._unlisting}
            raise

    def _stamped(self, k: int, previous: str | None, stamp: str) -> None:
        """This sidecar changed shard ``k`` and stamped it over ``previous``: when that is
        the stamp it last read the shard at, the shard needs no re-read (its content is what
        was read then, this sidecar's own change, and changes of writers whose stamps come
        after this one, which make the shard be re-read)."""
        if self._stamps[k] == previous:
            self._stamps[k] = stamp

    def _forget(self, name: str) -> None:
        if self._known.pop(name, None) is not None:
            self._by_shard[shard_of(name)].discard(name)
        self._next.pop(name, None)

    async def _migrate(self) -> None:
        """Move a former single index into the shards (once; retried by the refresh)."""
        try:
            await self.store().migrate()
            self._migrated = True
        except PylottoError as err:
            log.warning("scheduler: cannot migrate the former job index yet: %s", err.message)

    async def _refresh(self) -> None:
        """Re-read the index shards whose stamp changed (all of them every
        ``FULL_READ_SECONDS``) and learn what changed in them."""
        store = self.store()
        if not self._migrated:
            await store.migrate()
            self._migrated = True
        full = time.monotonic() >= self._full_read_at
        stamps = await store.stamps()
        which = [k for k in range(SHARDS) if full or stamps[k] != self._stamps[k]]
        if not which:
            return
        changed: dict[str, str] = {}
        for at in range(0, len(which), SHARDS_PER_READ):
            for k, names in (await store.shards(which[at:at + SHARDS_PER_READ])).items():
                for gone in [n for n in self._by_shard[k] if n not in names]:
                    self._forget(gone)
                changed.update((n, gen) for n, gen in names.items()
                               if self._known.get(n) != gen and n not in self._unlisting)
                await asyncio.sleep(0)  # one shard's work at a time: triggers go on between
        names_changed = list(changed)
        for at in range(0, len(names_changed), LEARN_CHUNK):  # learn as it reads
            chunk = names_changed[at:at + LEARN_CHUNK]
            for name, record in (await store.read_many(chunk)).items():
                if record is None:  # finished (or deleted) with its name left in the index
                    self._unlist(name, changed[name])
                elif changed[name] == record.generation and name not in self._unlisting:
                    self._learn(record)
        for k in which:
            self._stamps[k] = stamps[k]
        if full:
            self._full_read_at = time.monotonic() + FULL_READ_SECONDS

    async def _poll_store(self) -> None:
        """Flush the finished jobs and refresh (a failure logged once, until it passes)."""
        try:
            if time.monotonic() >= self._flush_at:
                self._flush_at = time.monotonic() + FLUSH_SECONDS
                await self._flush_unlisted()
            await self._refresh()
            if self._refresh_failing:
                log.info("scheduler: state store %s answers again", self.store().store)
            self._refresh_failing = False
        except PylottoError as err:
            if not self._refresh_failing:
                log.warning("scheduler: cannot read the jobs: %s", err.message)
            self._refresh_failing = True

    async def _poll_loop(self) -> None:
        """Look at the store every ``poll`` seconds, beside the trigger loop (a flush or a
        large refresh never holds a due trigger back)."""
        while True:
            await self._poll_store()
            await asyncio.sleep(self.poll)
