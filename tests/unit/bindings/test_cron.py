"""``bindings.cron`` without an app: its schedule forms (5 or 6 fields, descriptors, zones)
and errors, the host zone as Go names it, the event it fires, and the bindings capability's
input side (direction, the app's probe, a failed event, InvokeBinding refused)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from pylotto.appchannel.bindings import BindingAnswer, BindingChannel
from pylotto.capabilities.base import ComponentSet, RuntimeContext
from pylotto.capabilities.bindings import BindingsCapability
from pylotto.capabilities.pubsub import DiscoveryPolicy
from pylotto.capabilities.status import reported_features
from pylotto.components.base import Component, ComponentContext
from pylotto.components.bindings import cron
from pylotto.components.bindings.base import INPUT, directions
from pylotto.components.bindings.cron import CronBinding, go_utc_string, local_zone
from pylotto.config.model import AppConfig
from pylotto.core.errors import ComponentNotFound, ConfigError, Internal, Unavailable
from pylotto.core.metadata import decode
from pylotto.core.registry import resolve
from pylotto.core.schedule import Schedule, ScheduleError

T0 = datetime(2026, 12, 1, 10, 0, 0, tzinfo=UTC)


def make(metadata: dict[str, str], name: str = "tick") -> CronBinding:
    cls = resolve("bindings", "bindings.cron")
    assert cls is CronBinding
    settings = decode(CronBinding.Settings, metadata, component=f"bindings.{name}")
    return CronBinding(name, settings, ComponentContext("app", Path(".")))


@pytest.mark.parametrize(("spec", "expected"), [
    ("30 * * * *", T0.replace(minute=30)),  # 5 fields: minute first, at second 0
    ("0 30 * * * *", T0.replace(minute=30)),  # 6 fields: seconds first
    ("*/15 * * * * *", T0 + timedelta(seconds=15)),
    ("0 9 * * mon-fri", datetime(2026, 12, 2, 9, 0, tzinfo=UTC)),
    ("TZ=Europe/Paris 0 12 * * *", datetime(2026, 12, 1, 11, 0, tzinfo=UTC)),
    ("@every 15s", T0 + timedelta(seconds=15)),
    ("@every 500ms", T0 + timedelta(milliseconds=500)),
    ("@daily", datetime(2026, 12, 2, tzinfo=UTC)),
    ("@hourly", T0 + timedelta(hours=1)),
])
def test_schedules_the_cron_binding_accepts(spec: str, expected: datetime) -> None:
    schedule = Schedule.parse(spec, seconds_optional=True, zone=UTC)
    assert schedule.next_after(T0) == expected


def test_a_schedule_without_zone_is_read_in_the_zone_given() -> None:
    paris = ZoneInfo("Europe/Paris")
    assert Schedule.parse("0 12 * * *", seconds_optional=True, zone=paris).next_after(T0) == \
        datetime(2026, 12, 1, 11, 0, tzinfo=UTC)
    assert Schedule.parse("@daily", seconds_optional=True, zone=paris).next_after(T0) == \
        datetime(2026, 12, 1, 23, 0, tzinfo=UTC)


@pytest.mark.parametrize(("spec", "message"), [
    ("* * * *", "expected 5 to 6 fields, found 4: [* * * *]"),
    ("0 0 0 * * * *", "expected 5 to 6 fields, found 7"),
    ("@fortnightly", "unrecognized descriptor: @fortnightly"),
    ("@every soon", "failed to parse duration @every soon"),
    ("TZ=Mars/Olympus 0 * * * *", "provided bad location Mars/Olympus"),
    ("61 * * * *", "failed to parse cron expression"),
])
def test_bad_schedules_fail_init_naming_the_schedule(spec: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        make({"schedule": spec})
    assert f"invalid schedule format '{spec}'" in caught.value.message
    assert message in caught.value.message


def test_the_jobs_api_still_wants_six_fields() -> None:
    with pytest.raises(ScheduleError, match="expected exactly 6 fields, found 5"):
        Schedule.parse("30 * * * *")


def test_a_missing_schedule_fails_init() -> None:
    with pytest.raises(ConfigError, match="schedule not set"):
        make({})


def test_the_local_zone_as_go_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "Europe/Paris")
    name, zone = local_zone()
    assert name == "Europe/Paris" and zone == ZoneInfo("Europe/Paris")
    monkeypatch.setenv("TZ", "")
    assert local_zone() == ("UTC", UTC)
    monkeypatch.setenv("TZ", "Nowhere/Land")
    assert local_zone() == ("UTC", UTC)
    monkeypatch.delenv("TZ")
    monkeypatch.setattr(cron, "LOCALTIME", Path("/nonexistent/localtime"))
    assert local_zone() == ("UTC", UTC)


def test_read_time_is_printed_as_go_prints_a_utc_time() -> None:
    assert go_utc_string(T0) == "2026-12-01 10:00:00 +0000 UTC"
    assert go_utc_string(T0.replace(microsecond=120000)) == "2026-12-01 10:00:00.12 +0000 UTC"


async def test_cron_fires_events_with_its_metadata(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "UTC")
    binding = make({"schedule": "@every 100ms"})
    got: list[dict[str, str]] = []

    async def handler(event: object) -> bytes:
        got.append(event.metadata)  # type: ignore[attr-defined]
        if len(got) == 2:
            raise Internal("the app failed it")  # the next trigger still comes
        return b""

    task = asyncio.create_task(binding.read(handler))
    for _ in range(200):
        if len(got) >= 3:
            break
        await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(got) >= 3
    assert got[0]["timeZone"] == "UTC"
    assert got[0]["readTimeUTC"].endswith(" +0000 UTC")


class FakeChannel(BindingChannel):
    """An app in the process: listens to ``listening``, fails events while ``failing``."""

    def __init__(self, listening: set[str], unreachable: int = 0) -> None:
        self.listening, self.unreachable = listening, unreachable
        self.events: list[str] = []
        self.failing = False
        self.probes = 0

    async def listens(self, name: str, route: str) -> bool:
        self.probes += 1
        if self.unreachable:
            self.unreachable -= 1
            raise Unavailable("not up yet")
        return route in self.listening

    async def deliver(self, name: str, route: str, data: bytes,
                      metadata: dict[str, str]) -> BindingAnswer:
        self.events.append(route)
        if self.failing:
            raise Internal("status code: 500")
        return BindingAnswer(b"ok")


def capability(components: dict[str, Component], channel: BindingChannel) -> BindingsCapability:
    context = RuntimeContext(app=AppConfig(id="app"), data_dir=Path("."))
    return BindingsCapability(ComponentSet("binding", components, "bindings"), context,
                              channel=channel,
                              discovery=DiscoveryPolicy(initial_interval=0.01, window=5))


async def eventually(check: object, within: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not check():  # type: ignore[operator]
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def test_the_capability_reads_what_the_app_listens_to() -> None:
    fast = {"schedule": "@every 50ms"}
    components: dict[str, Component] = {
        "probed": make(fast, "probed"),
        "unheard": make(fast, "unheard"),
        "routed": make({**fast, "route": "/elsewhere"}, "routed"),
        "declared": make({**fast, "direction": "input"}, "declared"),
        "outonly": make({**fast, "direction": "output"}, "outonly"),
    }
    channel = FakeChannel({"probed", "/elsewhere"}, unreachable=2)
    bindings = capability(components, channel)
    assert sorted(bindings.inputs()) == ["declared", "probed", "routed", "unheard"]
    assert directions(components["outonly"]) == frozenset()
    assert reported_features("bindings", components["declared"]) == ["INPUT_BINDING"]
    await bindings.start()
    try:
        await eventually(lambda: {"probed", "/elsewhere", "declared"} <= set(channel.events))
        assert "unheard" not in channel.events and "outonly" not in channel.events
        channel.failing = True
        count = len(channel.events)
        await eventually(lambda: len(channel.events) > count + 2)  # failures do not stop it
        with pytest.raises(ComponentNotFound):
            await bindings.invoke("declared", "create", b"", {})
    finally:
        await bindings.stop()
    stopped = len(channel.events)
    await asyncio.sleep(0.2)
    assert len(channel.events) == stopped
    assert INPUT in directions(components["probed"])


async def test_no_app_channel_reads_nothing() -> None:
    context = RuntimeContext(app=AppConfig(id="app"), data_dir=Path("."))
    bindings = BindingsCapability(
        ComponentSet("binding", {"tick": make({"schedule": "@every 50ms"})}, "bindings"),
        context)
    await bindings.start()
    assert bindings.reading == {}
    await bindings.stop()


def test_workers_are_refused_with_a_cron_binding() -> None:
    """Each worker process would fire it: the app would get every tick once per worker."""
    from pylotto.config.model import ComponentSpec, RuntimeConfig
    from pylotto.process.workers import refuse_per_process

    config = RuntimeConfig(components=[ComponentSpec(
        name="tick", capability="bindings", type="bindings.cron",
        metadata={"schedule": "@every 1s"})])
    with pytest.raises(ConfigError, match=r"bindings\.tick \(bindings\.cron\)"):
        refuse_per_process(config)
