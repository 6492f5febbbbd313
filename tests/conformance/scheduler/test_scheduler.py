"""The scheduler core over every durable state store it runs on (sqlite, redis, postgresql,
mysql, etcd): jobs kept, triggered on time, once across two schedulers sharing the store, missed
triggers fired once after a restart, failure policies, a dead owner's trigger taken over."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pylotto.appchannel.jobs import TRIGGER_CARRIER, JobChannel
from pylotto.capabilities.base import ComponentSet, RuntimeContext
from pylotto.capabilities.scheduler import FailurePolicy, JobSpec, Payload, SchedulerCapability
from pylotto.capabilities.scheduler.store import shard_of
from pylotto.capabilities.state import StateCapability
from pylotto.config.model import AppConfig
from pylotto.core.errors import AlreadyExists, InvalidArgument, NotFound
from tests.conformance.cases import Case, build, load_cases

pytestmark = pytest.mark.timeout(60)

STORES = ("sqlite", "redis", "postgresql", "mysql", "etcd")


class CountingApp(JobChannel):
    """The app side: counts what it is handed; ``fail(name)`` answers False that often."""

    def __init__(self) -> None:
        self.got: Counter[str] = Counter()
        self.times: dict[str, list[float]] = {}
        self.failures: Counter[str] = Counter()
        self.hang = False
        self.delay = 0.0
        self.carriers: dict[str, Mapping[str, str] | None] = {}

    async def trigger(self, name: str, type_url: str, value: bytes) -> bool:
        if self.hang:
            await asyncio.Event().wait()
        await asyncio.sleep(self.delay)
        if self.failures[name] > 0:
            self.failures[name] -= 1
            return False
        self.got[name] += 1
        self.carriers[name] = TRIGGER_CARRIER.get()
        self.times.setdefault(name, []).append(time.time())
        return True


@pytest.fixture(params=load_cases("state", where=lambda c: c.name in STORES))
def case(request: pytest.FixtureRequest) -> Case:
    chosen: Case = request.param
    return chosen


Make = Callable[..., "asyncio.Future[SchedulerCapability]"]


@pytest.fixture
async def make(case: Case, tmp_path: Path) -> AsyncIterator[Callable[..., object]]:
    """``await make(app)`` → a started scheduler of app id ``app_id`` over its own component
    instance of the case's store (instances of one test share the data)."""
    app_id = f"sched-{uuid.uuid4().hex[:8]}"
    async with AsyncExitStack() as stack:
        schedulers: list[SchedulerCapability] = []

        async def start(app: CountingApp | None, lease: float = 2.0,
                        targets: dict[str, JobChannel] | None = None) -> SchedulerCapability:
            shared = {"connectionString": str(tmp_path / "jobs.db")} \
                if case.name == "sqlite" else {}
            component = await stack.enter_async_context(
                build(case, tmp_path, instance=str(len(schedulers)), **shared))
            state = StateCapability(ComponentSet("state store", {"jobs": component}),
                                    RuntimeContext(AppConfig(app_id=app_id), tmp_path))
            scheduler = SchedulerCapability(state, state.context, store_name="jobs",
                                            channel=app, poll=0.1, lease=lease,
                                            targets=targets)
            await scheduler.start()
            schedulers.append(scheduler)
            return scheduler

        yield start
        for scheduler in schedulers:
            await scheduler.stop()


async def eventually(check: Callable[[], bool], within: float = 5.0) -> None:
    deadline = time.time() + within
    while not check():
        assert time.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def test_jobs_are_kept_listed_and_deleted(make: Callable[..., object]) -> None:
    scheduler = await make(None)  # type: ignore[misc]
    spec = JobSpec("report", schedule="0 30 * * * *", repeats=5,
                   data=Payload("type.googleapis.com/x", b"\x01payload"),
                   failure_policy=FailurePolicy(drop=True, interval=None, max_retries=None))
    await scheduler.schedule(spec, overwrite=False)
    assert await scheduler.get("report") == spec
    with pytest.raises(AlreadyExists):
        await scheduler.schedule(spec, overwrite=False)
    await scheduler.schedule(JobSpec("report", due_time="1h"), overwrite=True)
    assert (await scheduler.get("report")).due_time == "1h"
    await scheduler.schedule(JobSpec("other-1", schedule="@every 1h"), overwrite=False)
    await scheduler.schedule(JobSpec("other-2", schedule="@daily"), overwrite=False)
    assert [j.name for j in await scheduler.list()] == ["other-1", "other-2", "report"]
    await scheduler.delete_prefix("other")
    assert [j.name for j in await scheduler.list()] == ["report"]
    await scheduler.delete("report")
    with pytest.raises(NotFound):
        await scheduler.get("report")
    await scheduler.delete("report")  # deleting a missing job is no error, as daprd


async def test_bad_jobs_are_refused_naming_the_field(make: Callable[..., object]) -> None:
    scheduler = await make(None)  # type: ignore[misc]
    for spec, field in [(JobSpec("a", schedule="every day"), "job.schedule"),
                        (JobSpec("a", due_time="tomorrow"), "job.due_time"),
                        (JobSpec("a", due_time="1s", repeats=3), "job.repeats"),
                        (JobSpec("a", due_time="1s", ttl="1h"), "job.ttl"),
                        (JobSpec("a/b", due_time="1s"), "job.name")]:
        with pytest.raises(InvalidArgument) as caught:
            await scheduler.schedule(spec, overwrite=False)
        assert caught.value.fields["field"] == field
    assert await scheduler.list() == []


async def test_a_one_shot_job_fires_once_then_is_gone(make: Callable[..., object]) -> None:
    app = CountingApp()
    scheduler = await make(app)  # type: ignore[misc]
    started = time.time()
    await scheduler.schedule(JobSpec("once", due_time="1s"), overwrite=False)
    await eventually(lambda: app.got["once"] == 1)
    assert app.times["once"][0] - started <= 2.2
    await asyncio.sleep(0.5)
    assert app.got["once"] == 1
    with pytest.raises(NotFound):
        await scheduler.get("once")


async def test_repeats_fire_that_many_times(make: Callable[..., object]) -> None:
    app = CountingApp()
    scheduler = await make(app)  # type: ignore[misc]
    await scheduler.schedule(JobSpec("thrice", schedule="@every 0.3s", repeats=3),
                             overwrite=False)
    await eventually(lambda: app.got["thrice"] == 3)
    await asyncio.sleep(0.7)
    assert app.got["thrice"] == 3
    assert await scheduler.list() == []


async def test_two_schedulers_deliver_each_trigger_once(make: Callable[..., object]) -> None:
    first, second = CountingApp(), CountingApp()
    one = await make(first)  # type: ignore[misc]
    two = await make(second)  # type: ignore[misc]
    await one.schedule(JobSpec("later", due_time="1h"), overwrite=False)
    # one store: what one schedules, the other sees
    assert [j.name for j in await two.list()] == ["later"]
    names = [f"job-{i}" for i in range(20)]
    # all due at one instant, however long scheduling them takes on a loaded machine: the two
    # schedulers race for each trigger
    at = (datetime.now(UTC) + timedelta(seconds=1.5)).isoformat().replace("+00:00", "Z")
    for name in names:
        await one.schedule(JobSpec(name, due_time=at), overwrite=False)
    await one.schedule(JobSpec("ticker", schedule="@every 0.5s", repeats=4), overwrite=False)
    await eventually(lambda: sum((first.got + second.got).values()) == 24, within=30)
    await asyncio.sleep(0.8)
    total = first.got + second.got
    assert {n: total[n] for n in names} == {n: 1 for n in names}
    assert total["ticker"] == 4


async def test_missed_triggers_fire_once_after_a_restart(make: Callable[..., object]) -> None:
    app = CountingApp()
    before = await make(app)  # type: ignore[misc]
    await before.schedule(JobSpec("tick", schedule="@every 0.4s"), overwrite=False)
    await eventually(lambda: app.got["tick"] >= 1)
    await before.stop()
    seen = app.got["tick"]
    await asyncio.sleep(1.2)  # three ticks missed
    back = time.time()
    again = await make(app)  # type: ignore[misc]
    await eventually(lambda: app.got["tick"] > seen)
    # the catch-up comes whenever the restarted scheduler first reads the store (later on a
    # loaded machine); the next regular tick is a full period after it, so anything else within
    # 0.3 s of the catch-up would be a missed tick fired again
    caught_up = min(t for t in app.times["tick"] if t >= back)
    await asyncio.sleep(0.3)
    fired_at_once = [t for t in app.times["tick"] if caught_up <= t <= caught_up + 0.3]
    assert len(fired_at_once) == 1, app.times["tick"]
    await again.delete("tick")


async def test_a_scheduler_woken_as_it_stops_stops(make: Callable[..., object]) -> None:
    """A wake-up racing the stop's cancellation (Python 3.11's wait_for swallowed it: the run
    loop went on and stop() never returned — a CI hang)."""
    scheduler = await make(CountingApp())  # type: ignore[misc]
    scheduler.poll = 60.0
    await asyncio.sleep(0.5)  # the run loop has read the store and waits for a wake-up
    scheduler._wake.set()
    async with asyncio.timeout(5):
        await scheduler.stop()


async def test_failure_policies(make: Callable[..., object]) -> None:
    app = CountingApp()
    scheduler = await make(app)  # type: ignore[misc]
    app.failures["retried"] = 2
    await scheduler.schedule(JobSpec("retried", due_time="0s", failure_policy=FailurePolicy(
        interval=timedelta(seconds=0.2), max_retries=3)), overwrite=False)
    await eventually(lambda: app.got["retried"] == 1)
    app.failures["dropped"] = 1
    await scheduler.schedule(JobSpec("dropped", due_time="0s", failure_policy=FailurePolicy(
        drop=True, interval=None, max_retries=None)), overwrite=False)
    await eventually(lambda: app.failures["dropped"] == 0)
    await asyncio.sleep(0.5)
    assert app.got["dropped"] == 0
    with pytest.raises(NotFound):
        await scheduler.get("dropped")


async def test_a_dead_owners_trigger_fires_elsewhere(make: Callable[..., object]) -> None:
    stuck, alive = CountingApp(), CountingApp()
    stuck.hang = True
    owner = await make(stuck, lease=1.0)  # type: ignore[misc]
    await owner.schedule(JobSpec("handover", due_time="0s"), overwrite=False)
    await asyncio.sleep(0.3)  # the owner claims it and hangs in the delivery
    await owner.stop()  # ... and dies without finishing
    started = time.time()
    await make(alive, lease=1.0)  # type: ignore[misc]
    await eventually(lambda: alive.got["handover"] == 1, within=3)
    assert time.time() - started <= 1.5  # lease (1 s) + poll


async def test_a_slow_delivery_keeps_its_claim(make: Callable[..., object]) -> None:
    slow, other = CountingApp(), CountingApp()
    slow.delay = other.delay = 1.2  # three times the lease: renewed, not taken over
    one = await make(slow, lease=0.4)  # type: ignore[misc]
    await make(other, lease=0.4)  # type: ignore[misc]
    await one.schedule(JobSpec("slow", due_time="1s"), overwrite=False)
    await eventually(lambda: (slow.got + other.got)["slow"] == 1)
    await asyncio.sleep(0.6)
    assert (slow.got + other.got)["slow"] == 1


async def test_a_job_of_another_target_goes_there_unseen_by_the_jobs_api(
        make: Callable[..., object]) -> None:
    publisher = CountingApp()
    # no app channel: the app's jobs are left to other sidecars, the other target's are not
    scheduler = await make(None, targets={"pubsub": publisher})  # type: ignore[misc]
    await scheduler.schedule(JobSpec("mine", due_time="1s"), overwrite=False)
    await scheduler.schedule_internal(JobSpec("pubsub/m1", due_time="2s", target="pubsub"))
    assert [j.name for j in await scheduler.list()] == ["mine"]
    await scheduler.delete_prefix("")  # every job of the app's: not the other target's
    assert await scheduler.list() == []
    await eventually(lambda: publisher.got["pubsub/m1"] == 1)
    await asyncio.sleep(0.5)
    assert publisher.got == Counter({"pubsub/m1": 1})


async def test_a_sidecar_learns_a_job_in_a_shard_it_stamps_itself_next(
        make: Callable[..., object]) -> None:
    """A job another sidecar lists in a shard, then this sidecar's own change of that shard:
    its own stamp over the other's, not the stamp it last read, so it re-reads the shard and
    learns the other's job (a sidecar skipping the shards it stamped would miss it for the
    ``FULL_READ_SECONDS`` of a full re-read)."""
    app = CountingApp()
    mine = await make(app)  # type: ignore[misc]
    other = await make(None)  # type: ignore[misc]  # schedules, never triggers
    theirs = "theirs"
    own = next(f"own-{i}" for i in range(10_000) if shard_of(f"own-{i}") == shard_of(theirs))
    await asyncio.sleep(0.3)  # both have read every shard
    await other.schedule(JobSpec(theirs, due_time="1s"), overwrite=False)
    await mine.schedule(JobSpec(own, due_time="1s"), overwrite=False)
    await eventually(lambda: app.got[theirs] == 1 and app.got[own] == 1, within=10)


async def test_triggers_are_counted_and_traced(make: Callable[..., object]) -> None:
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import SpanKind

    from pylotto.observability.metrics import Metrics
    from pylotto.observability.tracing import Tracing, TracingConfig

    app = CountingApp()
    scheduler = await make(app)  # type: ignore[misc]
    scheduler.metrics = metrics = Metrics()
    exporter = InMemorySpanExporter()
    tracing = Tracing(TracingConfig(sampling_rate=1.0, exporter="console"), "jobs-app")
    tracing._provider.add_span_processor(SimpleSpanProcessor(exporter))
    scheduler.tracing = tracing
    app.failures["flaky"] = 1
    await scheduler.schedule(JobSpec("flaky", due_time="0s", failure_policy=FailurePolicy(
        interval=timedelta(seconds=0.2), max_retries=3)), overwrite=False)
    await scheduler.schedule(JobSpec("steady", due_time="0s"), overwrite=False)

    def sample(name: str, **labels: str) -> float:
        value = metrics.registry.get_sample_value(name, labels)
        return 0.0 if value is None else value

    # counted once the app answered
    await eventually(lambda: sample("pylotto_job_triggers_total", target="app",
                                    outcome="delivered") == 2)
    assert app.got["flaky"] == 1 and app.got["steady"] == 1
    assert sample("pylotto_job_triggers_total", target="app", outcome="failed") == 1
    assert sample("pylotto_job_trigger_latency_seconds_count", target="app",
                  outcome="failed") == 1
    assert sample("pylotto_job_lateness_seconds_count", target="app") == 3
    spans = [s for s in exporter.get_finished_spans() if s.name == "trigger job"]
    assert sorted(str((s.attributes or {})["job.name"]) for s in spans) == \
        ["flaky", "flaky", "steady"]
    assert {s.kind for s in spans} == {SpanKind.CONSUMER}
    # the app is handed the trigger's own span as its trace context
    steady = next(s for s in spans if (s.attributes or {})["job.name"] == "steady")
    carrier = app.carriers["steady"] or {}
    assert carrier["traceparent"].split("-")[2] == f"{steady.context.span_id:016x}"
    tracing.shutdown()
