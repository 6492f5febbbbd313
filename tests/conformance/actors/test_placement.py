"""Actor placement over the real state stores it runs on (docs/design/actors.md §4.1): the
member document and the partition leases with a controlled clock (take, renew, expire,
release, compare-and-set races between instances), and whole placements of several sidecars
in one process — joining, leaving in order and dying — never letting two own one partition."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from pylotto.capabilities.actors.api import ActorRef, EntityConfig, PlacementListener
from pylotto.capabilities.actors.placement import LeasedPlacement
from pylotto.capabilities.actors.placement.leases import LeaseRecord, Leases
from pylotto.capabilities.actors.placement.membership import Membership, hosting
from pylotto.capabilities.actors.placement.ring import partition
from pylotto.capabilities.base import ComponentSet, RuntimeContext
from pylotto.capabilities.state import StateCapability
from pylotto.config.model import ActorsConfig, AppConfig
from pylotto.core.errors import NotFound
from tests.conformance.cases import Case, build, load_cases

pytestmark = pytest.mark.timeout(120)

STORES = ("sqlite", "redis", "postgresql", "mysql", "etcd", "zookeeper")
LEASE = 5.0
SKEW = 1.0


@dataclass
class FakeClock:
    """Both clocks, moved by the test only."""

    mono: float = 1000.0
    now: float = 1_700_000_000.0

    def monotonic(self) -> float:
        return self.mono

    def wall(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.mono += seconds
        self.now += seconds


@pytest.fixture(params=load_cases("state", where=lambda c: c.name in STORES))
def case(request: pytest.FixtureRequest) -> Case:
    chosen: Case = request.param
    return chosen


States = Callable[[], Awaitable[StateCapability]]


@pytest.fixture
async def states(case: Case, tmp_path: Path) -> AsyncIterator[States]:
    """``await states()`` → a state capability of one app id over its own component instance
    of the case's store (the instances of a test share the data, as sidecars do)."""
    app_id = f"act-{uuid.uuid4().hex[:8]}"
    async with AsyncExitStack() as stack:
        made: list[StateCapability] = []

        async def make() -> StateCapability:
            shared = {"connectionString": str(tmp_path / "actors.db")} \
                if case.name == "sqlite" else {}
            component = await stack.enter_async_context(
                build(case, tmp_path, instance=str(len(made)), **shared))
            state = StateCapability(ComponentSet("state store", {"actors": component}),
                                    RuntimeContext(AppConfig(app_id=app_id), tmp_path))
            made.append(state)
            return state

        yield make


def leases_of(state: StateCapability, address: str, clock: FakeClock) -> Leases:
    return Leases(state, "actors", state.context.app_id, address, lease=LEASE, skew=SKEW,
                  clock=clock)


async def record(leases: Leases, name: str) -> LeaseRecord | None:
    return (await leases.read([name]))[name].record


# ---- the member document -------------------------------------------------------------------


async def test_members_renew_and_expire_and_leave(states: States) -> None:
    clock = FakeClock()
    state = await states()
    a = Membership(state, "actors", state.context.app_id, "a:1", LEASE, clock)
    b = Membership(await states(), "actors", state.context.app_id, "b:2", LEASE, clock)
    await a.renew({"T"})
    seen = await b.renew({"T", "U"})
    assert sorted(hosting(seen.values(), "T", clock.wall())) == ["a:1", "b:2"]
    assert hosting(seen.values(), "U", clock.wall()) == ["b:2"]
    clock.advance(3)
    await a.renew({"T"})
    clock.advance(3)  # b's entry is past its until, a's is not
    members = await a.read()
    assert hosting(members.values(), "T", clock.wall()) == ["a:1"]
    assert "b:2" in members  # expired, still written...
    clock.advance(LEASE + 1)
    await a.renew({"T"})
    assert set(await a.read()) == {"a:1"}  # ...until a writer prunes it
    await a.leave()
    assert await b.read() == {}


async def test_concurrent_renewals_lose_no_member(states: States) -> None:
    clock = FakeClock()
    members = []
    for i in range(6):
        state = await states()
        members.append(Membership(state, "actors", state.context.app_id, f"m{i}:1", LEASE,
                                  clock))
    for _ in range(3):
        await asyncio.gather(*(m.renew({"T"}) for m in members))
    got = await members[0].read()
    assert sorted(hosting(got.values(), "T", clock.wall())) == [f"m{i}:1" for i in range(6)]


# ---- partition leases ----------------------------------------------------------------------


async def test_a_lease_is_taken_once_renewed_and_judged_by_each_clock(states: States) -> None:
    ca, cb = FakeClock(), FakeClock()
    a = leases_of(await states(), "a:1", ca)
    b = leases_of(await states(), "b:2", cb)
    assert await a.take(["T#0"]) == ["T#0"]
    assert a.valid("T#0")
    taken = await record(a, "T#0")
    assert taken is not None and taken.owner == "a:1" and taken.epoch == 1
    assert taken.until == ca.now + LEASE
    assert await b.take(["T#0"]) == []  # held
    ca.advance(2)
    cb.advance(2)
    assert await a.renew() == []
    renewed = await record(a, "T#0")
    assert renewed is not None and renewed.until == ca.now + LEASE and renewed.epoch == 1
    # the holder stops serving at t_sent + lease - margin by its monotonic clock...
    ca.advance(LEASE - a.margin - 0.01)
    assert a.valid("T#0")
    ca.advance(0.02)
    assert not a.valid("T#0")
    # ...a taker waits until until + skew by its wall clock
    cb.now = renewed.until + SKEW - 0.01
    assert await b.take(["T#0"]) == []
    cb.now = renewed.until + SKEW + 0.01
    assert await b.take(["T#0"]) == ["T#0"]
    moved = await record(b, "T#0")
    assert moved is not None and moved.owner == "b:2" and moved.epoch == 2
    assert await a.renew() == ["T#0"]  # the former holder finds it lost
    assert "T#0" not in a.held and not a.valid("T#0")


async def test_a_wall_clock_jump_does_not_lengthen_a_holders_lease(states: States) -> None:
    clock = FakeClock()
    a = leases_of(await states(), "a:1", clock)
    await a.take(["T#1"])
    clock.now -= 3600  # the wall clock is set back an hour
    clock.mono += LEASE
    assert not a.valid("T#1")


async def test_a_lapsed_lease_nobody_took_is_renewed_by_its_holder(states: States) -> None:
    clock = FakeClock()
    a = leases_of(await states(), "a:1", clock)
    await a.take(["T#2"])
    clock.mono += LEASE  # e.g. the store was unreachable for a while
    assert not a.valid("T#2")
    assert await a.renew() == []
    assert a.valid("T#2")
    kept = await record(a, "T#2")
    assert kept is not None and kept.epoch == 1


async def test_a_released_lease_is_free_at_once_and_its_epoch_goes_on(states: States) -> None:
    clock = FakeClock()
    a = leases_of(await states(), "a:1", clock)
    b = leases_of(await states(), "b:2", clock)
    await a.take(["T#0", "T#1"])
    await a.release(["T#0"])
    assert not a.valid("T#0") and a.valid("T#1")
    freed = await record(a, "T#0")
    assert freed is not None and freed.free and freed.epoch == 1
    assert await b.take(["T#0", "T#1"]) == ["T#0"]
    again = await record(b, "T#0")
    assert again is not None and again.owner == "b:2" and again.epoch == 2


async def test_a_release_never_frees_a_lease_somebody_else_holds(states: States) -> None:
    ca, cb = FakeClock(), FakeClock()
    a = leases_of(await states(), "a:1", ca)
    b = leases_of(await states(), "b:2", cb)
    await a.take(["T#3"])
    cb.now += LEASE + SKEW + 1
    assert await b.take(["T#3"]) == ["T#3"]
    await a.release(["T#3"])
    still = await record(b, "T#3")
    assert still is not None and still.owner == "b:2"
    assert await b.renew() == []


async def test_a_restarted_sidecar_on_the_same_address_waits_for_its_former_lease(
        states: States) -> None:
    clock = FakeClock()
    before = leases_of(await states(), "a:1", clock)
    await before.take(["T#4"])
    after = leases_of(await states(), "a:1", clock)  # another instance id
    assert await after.take(["T#4"]) == []
    clock.advance(LEASE + SKEW + 0.1)
    assert await after.take(["T#4"]) == ["T#4"]


async def test_racing_takers_get_each_lease_exactly_once(states: States) -> None:
    clock = FakeClock()
    names = [f"T#{p}" for p in range(16)]
    takers = [leases_of(await states(), f"m{i}:1", clock) for i in range(4)]
    for round_ in range(3):
        got = await asyncio.gather(*(t.take(random.sample(names, len(names)))
                                     for t in takers))
        counts = Counter(n for taken in got for n in taken)
        assert all(c == 1 for c in counts.values()), counts
        if round_ == 0:
            assert set(counts) == set(names)
        owners = {n: next(t.address for t in takers if n in t.held) for n in names}
        for name in names:
            stored = await record(takers[0], name)
            assert stored is not None and stored.owner == owners[name]
        clock.advance(LEASE + SKEW + 0.1)  # all expire: the next round races again
        for t in takers:
            t.held.clear()


async def test_all_held_leases_renew_together(states: States) -> None:
    clock = FakeClock()
    a = leases_of(await states(), "a:1", clock)
    names = [f"T#{p}" for p in range(150)]  # more than one transaction takes
    assert sorted(await a.take(names)) == sorted(names)
    clock.advance(1.5)
    assert await a.renew() == []
    read = await a.read(names)
    assert {r.record.until for r in read.values() if r.record} == {clock.now + LEASE}


# ---- whole placements ----------------------------------------------------------------------


@dataclass
class FakeRuntime(PlacementListener):
    """The local runtime as placement sees it: the actors active here, halted when told."""

    placement: LeasedPlacement | None = None
    active: set[ActorRef] = field(default_factory=set)
    halts: int = 0

    async def halt(self, keep: Callable[[ActorRef], bool], drain: bool) -> None:
        self.halts += 1
        if drain:
            await asyncio.sleep(0.05)  # ongoing turns end
        self.active = {a for a in self.active if keep(a)}


PARTITIONS = 16
TYPE = "Counter"


def one_id_per_partition() -> list[ActorRef]:
    found: dict[int, ActorRef] = {}
    i = 0
    while len(found) < PARTITIONS:
        found.setdefault(partition(f"id-{i}", PARTITIONS), ActorRef(TYPE, f"id-{i}"))
        i += 1
    return [found[p] for p in range(PARTITIONS)]


class Cluster:
    """Placements of one app id in this process, with a sampler asserting that no actor is
    ever owned by two of them."""

    def __init__(self, states: States, config: ActorsConfig) -> None:
        self.states, self.config = states, config
        self.members: dict[str, tuple[LeasedPlacement, FakeRuntime]] = {}
        self.actors = one_id_per_partition()
        self.worst = 0
        self.samples = 0
        self._sampler: asyncio.Task[None] | None = None

    async def join(self, address: str,
                   hosted: Mapping[str, EntityConfig] | None = None) -> LeasedPlacement:
        state = await self.states()
        placement = LeasedPlacement(state, "actors", state.context.app_id, address,
                                    self.config)
        runtime = FakeRuntime(placement)
        self.members[address] = (placement, runtime)
        await placement.start({TYPE: EntityConfig()} if hosted is None else hosted, runtime)
        return placement

    def owners(self, actor: ActorRef) -> list[str]:
        return [a for a, (p, _) in self.members.items() if p.owns(actor)]

    def sample(self) -> None:
        for actor in self.actors:
            owners = self.owners(actor)
            self.worst = max(self.worst, len(owners))
            for address in owners:  # what the runtime would activate on a call
                self.members[address][1].active.add(actor)
        self.samples += 1

    def start_sampling(self) -> None:
        async def loop() -> None:
            while True:
                self.sample()
                await asyncio.sleep(0.005)

        self._sampler = asyncio.create_task(loop())

    async def stop_sampling(self) -> None:
        from pylotto.core.tasks import stop_task

        await stop_task(self._sampler)

    def settled(self, hosts: set[str]) -> bool:
        """Every partition owned by exactly one of ``hosts``, each of them ready."""
        return all(len(self.owners(a)) == 1 and self.owners(a)[0] in hosts
                   for a in self.actors) and all(self.members[h][0].ready for h in hosts)


async def eventually(check: Callable[[], bool], within: float = 20.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


@pytest.fixture
def config() -> ActorsConfig:
    return ActorsConfig(partitions=PARTITIONS, lease_seconds=1.5, poll_seconds=0.1,
                        clock_skew_seconds=0.2, handover_timeout_seconds=8.0)


async def test_members_join_leave_and_die_and_no_actor_has_two_owners(
        states: States, config: ActorsConfig) -> None:
    cluster = Cluster(states, config)
    cluster.start_sampling()
    try:
        for address in ("s1:1", "s2:1", "s3:1"):
            await cluster.join(address)
        await eventually(lambda: cluster.settled({"s1:1", "s2:1", "s3:1"}))
        shares = Counter(cluster.owners(a)[0] for a in cluster.actors)
        assert len(shares) == 3

        # every sidecar, a routing-only one included, locates each actor at its owner
        router = await cluster.join("r:1", hosted={})
        for actor in cluster.actors:
            owner = cluster.owners(actor)[0]
            for address, (placement, _) in cluster.members.items():
                where = await placement.locate(actor)
                assert (where.local and address == owner) or where.address == owner
        assert router.ready and router.connected

        # a fourth joins: it gets a share, the partitions it took were halted where they were
        await cluster.join("s4:1")
        await eventually(lambda: cluster.settled({"s1:1", "s2:1", "s3:1", "s4:1"}))
        assert any(cluster.owners(a) == ["s4:1"] for a in cluster.actors)
        for address in ("s1:1", "s2:1", "s3:1"):
            placement, runtime = cluster.members[address]

            def halted(p: LeasedPlacement = placement, r: FakeRuntime = runtime) -> bool:
                return all(p.owns(a) for a in r.active)

            await eventually(halted)

        # an orderly stop hands everything over
        leaving, runtime = cluster.members["s1:1"]
        await leaving.stop()
        assert runtime.active == set() and not leaving.connected
        await eventually(lambda: cluster.settled({"s2:1", "s3:1", "s4:1"}))

        # one stalls after it left the members (no renewal, no release, but it still
        # believes its leases until they lapse by its own clock): the others, whose rings
        # name them at once, must wait for the leases to expire
        zombie, _ = cluster.members["s2:1"]
        await zombie.aclose()
        await zombie.membership.leave()
        await eventually(lambda: cluster.settled({"s3:1", "s4:1"}))

        # one is SIGKILLed: its member entry expires, then its leases
        dead, _ = cluster.members["s3:1"]
        await dead.aclose()
        await eventually(lambda: cluster.settled({"s4:1"}))
    finally:
        await cluster.stop_sampling()
        for placement, _ in cluster.members.values():
            await placement.aclose()
    assert cluster.samples > 100
    assert cluster.worst == 1


async def test_an_unhosted_type_is_not_found_and_a_handover_is_waited_for(
        states: States, config: ActorsConfig) -> None:
    cluster = Cluster(states, config)
    try:
        first = await cluster.join("s1:1")
        with pytest.raises(NotFound, match=r"did not find address for actor 'Other\|\|7'"):
            await first.locate(ActorRef("Other", "7"))
        await eventually(lambda: cluster.settled({"s1:1"}))
        second = await cluster.join("s2:1")
        # calls reaching the new member for a partition moving to it wait for the lease
        moving = [a for a in cluster.actors if cluster.owners(a) == ["s1:1"]
                  and second._target(a) == "s2:1"]
        assert moving
        where = await asyncio.gather(*(second.locate(a) for a in moving))
        assert all(w.local for w in where)
        assert all(cluster.owners(a) == ["s2:1"] for a in moving)
    finally:
        for placement, _ in cluster.members.values():
            await placement.aclose()
