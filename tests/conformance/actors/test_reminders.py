"""Actor reminders over real actor state stores (sqlite, redis, postgresql): kept, listed,
overwritten and removed; out of the Jobs API's sight; each tick handed to the TickSink (the
router's place) once per period, also across a restart of the Reminders and with two
instances over one store; a tick not delivered is retried; a tick answering cancel deletes
the reminder."""

from __future__ import annotations

import asyncio
import itertools
import math
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from pylotto.capabilities.actors.api import (
    ActorRef,
    Reminder,
    ReminderSpec,
    Tick,
    TickKind,
    TickOutcome,
    TickSink,
)
from pylotto.capabilities.actors.reminders import SchedulerReminders, job_name
from pylotto.capabilities.base import ComponentSet, RuntimeContext
from pylotto.capabilities.scheduler import FailurePolicy, JobSpec, SchedulerCapability
from pylotto.capabilities.state import StateCapability
from pylotto.config.model import AppConfig
from pylotto.core.errors import AlreadyExists, InvalidArgument, NotFound, PermissionDenied
from tests.conformance.cases import Case, build, load_cases

pytestmark = pytest.mark.timeout(90)

STORES = ("sqlite", "redis", "postgresql")
A = ActorRef("Counter", "a-1")
B = ActorRef("Counter", "b-2")
OTHER = ActorRef("Timer", "a-1")


@dataclass
class Router:
    """The TickSink: records every tick (time, which instance); ``answer`` decides."""

    ticks: list[tuple[float, str, Tick]] = field(default_factory=list)
    answer: Callable[[Tick, int], TickOutcome] = lambda tick, n: TickOutcome(True)

    def sink(self, instance: str) -> TickSink:
        async def fire(tick: Tick) -> TickOutcome:
            self.ticks.append((time.time(), instance, tick))
            return self.answer(tick, len(self.of(tick.actor, tick.name)))
        return fire

    def of(self, actor: ActorRef, name: str) -> list[float]:
        return [at for at, _, tick in self.ticks if tick.actor == actor and tick.name == name]


@pytest.fixture(params=load_cases("state", where=lambda c: c.name in STORES))
def case(request: pytest.FixtureRequest) -> Case:
    chosen: Case = request.param
    return chosen


@dataclass
class World:
    make: Callable[..., Awaitable[SchedulerReminders]]
    jobs: Callable[[], Awaitable[SchedulerCapability]]
    router: Router


@pytest.fixture
async def world(case: Case, tmp_path: Path) -> AsyncIterator[World]:
    """``await world.make()`` → started Reminders of one app id, each over its own component
    instance of the case's store (all sharing the data); ``world.jobs()`` → the Jobs API's
    scheduler of that app id over the same store."""
    app_id = f"actors-{uuid.uuid4().hex[:8]}"
    router = Router()
    async with AsyncExitStack() as stack:
        started: list[SchedulerReminders | SchedulerCapability] = []
        count = [0]

        async def state() -> StateCapability:
            shared = {"connectionString": str(tmp_path / "actors.db")} \
                if case.name == "sqlite" else {}
            count[0] += 1
            component = await stack.enter_async_context(
                build(case, tmp_path, instance=str(count[0]), **shared))
            context = RuntimeContext(AppConfig.model_validate({"app_id": app_id}), tmp_path)
            return StateCapability(ComponentSet("state store", {"actors": component}), context)

        async def make(hosted: Callable[[str], bool] | None = None) -> SchedulerReminders:
            reminders = SchedulerReminders(await state(), "actors", hosted=hosted, poll=0.1,
                                           lease=2.0)
            await reminders.start(router.sink(f"r{len(started)}"))
            started.append(reminders)
            return reminders

        async def jobs() -> SchedulerCapability:
            scheduler = SchedulerCapability(await state(), RuntimeContext(
                AppConfig.model_validate({"app_id": app_id}), tmp_path), store_name="actors",
                poll=0.1)
            await scheduler.start()
            started.append(scheduler)
            return scheduler

        yield World(make, jobs, router)
        for each in started:
            await each.stop()


async def eventually(check: Callable[[], bool], within: float = 15.0) -> None:
    deadline = time.time() + within
    while not check():
        assert time.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def eventually_async(check: Callable[[], Awaitable[bool]],
                           within: float = 15.0) -> None:
    deadline = time.time() + within
    while not await check():
        assert time.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


def gaps(times: list[float]) -> list[float]:
    return [later - earlier for earlier, later in itertools.pairwise(times)]


def one_per_period(times: list[float], start: float) -> bool:
    """The k-th tick comes no sooner than ``start`` + k periods (of 1 s): never two ticks
    for one period, late ones included (a tick comes late, never early)."""
    return all(at >= start + k for k, at in enumerate(times))


async def test_reminders_are_kept_listed_overwritten_and_removed(world: World) -> None:
    reminders = await world.make()
    policy = FailurePolicy(drop=False, interval=None, max_retries=2)
    spec = ReminderSpec(due_time="1h", period="R5/PT10S", ttl="2h", data=b'{"n":1}',
                        failure_policy=policy)
    await reminders.register(A, "nightly", spec, overwrite=True)
    assert await reminders.get(A, "nightly") == Reminder(A, "nightly", ReminderSpec(
        due_time="1h", period="@every 10s", ttl="2h", data=b'{"n":1}', failure_policy=policy))
    with pytest.raises(AlreadyExists) as exists:
        await reminders.register(A, "nightly", ReminderSpec(due_time="1s"), overwrite=False)
    assert exists.value.where == "actors.reminder_create"
    assert exists.value.message == "actor reminder already exists: nightly"
    await reminders.register(A, "nightly", ReminderSpec(due_time="2h", data=b'"b64"'),
                             overwrite=True)
    got = await reminders.get(A, "nightly")
    assert (got.spec.due_time, got.spec.period, got.spec.data) == ("2h", "", b'"b64"')
    await reminders.register(A, "second", ReminderSpec(period="1h"), overwrite=False)
    await reminders.register(B, "nightly", ReminderSpec(due_time="1h"), overwrite=False)
    await reminders.register(OTHER, "nightly", ReminderSpec(due_time="1h"), overwrite=False)

    def names(found: list[Reminder]) -> list[tuple[str, str, str]]:
        return sorted((r.actor.type, r.actor.id, r.name) for r in found)

    assert names(await reminders.list("Counter", None)) == [
        ("Counter", "a-1", "nightly"), ("Counter", "a-1", "second"),
        ("Counter", "b-2", "nightly")]
    assert names(await reminders.list("Counter", "b-2")) == [("Counter", "b-2", "nightly")]
    assert names(await reminders.list("Timer", None)) == [("Timer", "a-1", "nightly")]

    jobs = await world.jobs()  # the Jobs API of the same app id sees none of them
    assert await jobs.list() == []
    await jobs.schedule(JobSpec("nightly", due_time="1h"), overwrite=False)
    await jobs.delete_prefix("")
    assert len(await reminders.list("Counter", None)) == 3

    await reminders.unregister(A, "second")
    with pytest.raises(NotFound) as missing:
        await reminders.get(A, "second")
    assert missing.value.where == "actors.reminder_get"
    await reminders.unregister(A, "second")  # gone already: no error, as daprd
    await reminders.unregister_all("Counter", "a-1")
    assert names(await reminders.list("Counter", None)) == [("Counter", "b-2", "nightly")]
    await reminders.unregister_all("Counter", None)
    assert await reminders.list("Counter", None) == []
    assert names(await reminders.list("Timer", None)) == [("Timer", "a-1", "nightly")]


async def test_bad_reminders_are_refused(world: World) -> None:
    reminders = await world.make(hosted=lambda actor_type: actor_type == "Counter")
    for spec, text in [
        (ReminderSpec(period="P1M"), "unsupported period format: P1M"),
        (ReminderSpec(period="R2/P1D"), "unsupported period format: R2/P1D"),
        (ReminderSpec(period="often"), "unsupported period format: often"),
        (ReminderSpec(due_time="later"), "due time format not recognized"),
        (ReminderSpec(due_time="1s", ttl="1h"), "must have a schedule to have a ttl"),
        (ReminderSpec(), "job must have either a due time or a schedule"),
        (ReminderSpec(period="0s"), "failed to parse duration @every 0s"),
    ]:
        with pytest.raises(InvalidArgument) as caught:
            await reminders.register(A, "bad", spec, overwrite=True)
        assert caught.value.where == "actors.reminder_create"
        assert text in caught.value.message
        assert caught.value.fields["detail"] == caught.value.message  # daprd's %s
    with pytest.raises(InvalidArgument):  # go-etcd-cron's name rule on the id
        await reminders.register(ActorRef("Counter", "a/b"), "r", ReminderSpec(due_time="1s"),
                                 True)
    for call in (reminders.register(OTHER, "r", ReminderSpec(due_time="1s"), True),
                 reminders.get(OTHER, "r"), reminders.unregister(OTHER, "r"),
                 reminders.list("Timer", None), reminders.unregister_all("Timer", "a-1")):
        with pytest.raises(PermissionDenied) as denied:
            await call
        assert denied.value.where == "actors.reminder_hosted"
    assert await reminders.list("Counter", None) == []


async def test_each_tick_reaches_the_sink_once_per_period(world: World) -> None:
    reminders = await world.make()
    begin = math.floor(time.time())  # the scheduler counts from the whole second
    await reminders.register(A, "r", ReminderSpec(due_time="0s", period="R3/PT1S",
                                                  data=b'"payload"'), overwrite=True)
    await reminders.register(B, "once", ReminderSpec(due_time="500ms"), overwrite=True)
    await eventually(lambda: len(world.router.of(A, "r")) == 3)

    async def gone() -> bool:
        return await reminders.list("Counter", None) == []

    await eventually_async(gone)
    await asyncio.sleep(1.5)
    assert len(world.router.of(A, "r")) == 3
    assert one_per_period(world.router.of(A, "r"), begin), (begin, world.router.of(A, "r"))
    assert len(world.router.of(B, "once")) == 1
    tick = next(t for _, _, t in world.router.ticks if t.name == "r")
    assert tick == Tick(A, TickKind.REMINDER, "r", data=b'"payload"')


async def test_reminders_fire_once_per_period_across_a_restart(world: World) -> None:
    first = await world.make()
    begin = math.floor(time.time())
    await first.register(A, "r", ReminderSpec(due_time="0s", period="1s"), overwrite=True)
    await first.register(B, "r", ReminderSpec(due_time="0s", period="1s"), overwrite=True)
    await eventually(lambda: len(world.router.of(A, "r")) >= 2
                     and len(world.router.of(B, "r")) >= 2)
    await first.stop()
    stopped = time.time()
    await asyncio.sleep(3.0)  # three ticks missed
    assert all(at <= stopped for at, _, _ in world.router.ticks)  # none from a stopped one
    second = await world.make()  # a new process on the same store
    await eventually(lambda: len([at for at in world.router.of(A, "r") if at > stopped]) >= 3
                     and len([at for at in world.router.of(B, "r") if at > stopped]) >= 3)
    for actor in (A, B):
        times = world.router.of(actor, "r")
        before = [at for at in times if at <= stopped]
        after = [at for at in times if at > stopped]
        assert one_per_period(before, begin), (begin, times)
        # the missed ticks fire once, not once each: then one per period again
        assert one_per_period(after, math.floor(after[0])), times
    assert second.delivered >= 6
    assert {r.actor for r in await second.list("Counter", None)} == {A, B}


async def test_two_instances_over_one_store_deliver_each_tick_once(world: World) -> None:
    one, two = await world.make(), await world.make()
    for k in range(6):
        await one.register(ActorRef("Counter", f"id-{k}"), "r",
                           ReminderSpec(due_time="0s", period="R3/PT1S"), overwrite=True)
    await eventually(lambda: len(world.router.ticks) >= 18)
    await asyncio.sleep(1.5)
    assert len(world.router.ticks) == 18
    for k in range(6):
        assert len(world.router.of(ActorRef("Counter", f"id-{k}"), "r")) == 3
    assert one.delivered + two.delivered == 18
    assert await two.list("Counter", None) == []


async def test_an_undelivered_tick_is_retried(world: World) -> None:
    world.router.answer = lambda tick, n: TickOutcome(delivered=n > 2)  # moved, moved, ok
    reminders = await world.make()
    await reminders.register(A, "r", ReminderSpec(due_time="0s"), overwrite=True)
    await eventually(lambda: len(world.router.of(A, "r")) == 3)
    at = world.router.of(A, "r")
    assert all(gap >= 0.9 for gap in gaps(at))  # the default policy: every second
    assert reminders.delivered == 1
    await eventually_async(lambda: _none(reminders))


async def _none(reminders: SchedulerReminders) -> bool:
    return await reminders.list("Counter", None) == []


async def test_a_tick_answering_cancel_deletes_the_reminder(world: World) -> None:
    world.router.answer = lambda tick, n: TickOutcome(True, cancel=n >= 2)
    reminders = await world.make()
    await reminders.register(A, "c", ReminderSpec(due_time="0s", period="1s"), overwrite=True)
    await reminders.register(B, "keep", ReminderSpec(due_time="0s", period="1h"),
                             overwrite=True)
    await eventually(lambda: len(world.router.of(A, "c")) == 2)

    async def deleted() -> bool:
        try:
            await reminders.get(A, "c")
        except NotFound:
            return True
        return False

    await eventually_async(deleted)
    await asyncio.sleep(2.0)
    assert len(world.router.of(A, "c")) == 2
    assert [r.name for r in await reminders.list("Counter", None)] == ["keep"]
    assert job_name(A, "c") == "Counter||a-1||c"


async def test_a_ttl_ends_a_periodic_reminder_and_drop_gives_up_a_tick(world: World) -> None:
    world.router.answer = lambda tick, n: TickOutcome(delivered=tick.name != "dropped")
    reminders = await world.make()
    begin = math.floor(time.time())
    await reminders.register(A, "ttl", ReminderSpec(due_time="0s", period="1s", ttl="2500ms"),
                             overwrite=True)
    await reminders.register(A, "dropped", ReminderSpec(
        due_time="0s", failure_policy=FailurePolicy(drop=True, interval=None,
                                                    max_retries=None)), overwrite=True)
    await eventually_async(lambda: _none(reminders))
    await asyncio.sleep(1.5)
    assert one_per_period(world.router.of(A, "ttl"), begin)
    assert len(world.router.of(A, "ttl")) == 3  # at 0, 1 and 2 s of the 2.5 s
    assert len(world.router.of(A, "dropped")) == 1  # not delivered, not retried


async def test_reminders_straight_over_a_component(case: Case, tmp_path: Path) -> None:
    router = Router()
    async with build(case, tmp_path) as component:
        reminders = SchedulerReminders.over_component(
            component, f"actors-{uuid.uuid4().hex[:8]}", tmp_path, poll=0.1)
        await reminders.start(router.sink("only"))
        try:
            await reminders.register(A, "r", ReminderSpec(due_time="0s", data=b"1"), True)
            await eventually(lambda: len(router.of(A, "r")) == 1)
            assert router.ticks[0][2].data == b"1"
        finally:
            await reminders.stop()
