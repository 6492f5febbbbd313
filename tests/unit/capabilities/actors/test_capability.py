"""ActorsCapability's checks in front of timers and reminders (what reaches them, with which
errors), and its status; the timers and reminders here only record what they are given."""

from __future__ import annotations

import pytest

from pylotto.capabilities.actors import ActorsCapability
from pylotto.capabilities.actors.api import (
    ActorRef,
    EntityConfig,
    Reminder,
    Reminders,
    ReminderSpec,
    TickSink,
    Timers,
    TimerSpec,
)
from pylotto.config.model import ActorsConfig
from pylotto.core.errors import (
    Internal,
    InvalidArgument,
    NotConfigured,
    PermissionDenied,
    PylottoError,
)
from tests.unit.capabilities.actors.host import RecordingHost

A = ActorRef("Counter", "a")
OTHER = ActorRef("Other", "1")


class RecordingTimers(Timers):
    def __init__(self) -> None:
        self.sink: TickSink | None = None
        self.done: list[tuple[str, ActorRef, str]] = []
        self.stopped = False

    def start(self, sink: TickSink) -> None:
        self.sink = sink

    async def stop(self) -> None:
        self.stopped = True

    async def register(self, actor: ActorRef, name: str, spec: TimerSpec) -> None:
        self.done.append(("register", actor, name))

    async def unregister(self, actor: ActorRef, name: str) -> None:
        self.done.append(("unregister", actor, name))


class RecordingReminders(Reminders):
    def __init__(self) -> None:
        self.sink: TickSink | None = None
        self.done: list[tuple[object, ...]] = []

    async def start(self, sink: TickSink) -> None:
        self.sink = sink

    async def stop(self) -> None:
        self.done.append(("stop",))

    async def register(self, actor: ActorRef, name: str, spec: ReminderSpec,
                       overwrite: bool) -> None:
        self.done.append(("register", actor, name, overwrite))

    async def unregister(self, actor: ActorRef, name: str) -> None:
        self.done.append(("unregister", actor, name))

    async def get(self, actor: ActorRef, name: str) -> Reminder:
        return Reminder(actor, name, ReminderSpec(period="1s"))

    async def list(self, actor_type: str, actor_id: str | None) -> list[Reminder]:
        return [Reminder(ActorRef(actor_type, actor_id or "x"), "r", ReminderSpec())]

    async def unregister_all(self, actor_type: str, actor_id: str | None) -> None:
        self.done.append(("unregister_all", actor_type, actor_id))


async def started(**kwargs: object) -> ActorsCapability:
    cap = ActorsCapability(None, ActorsConfig(), "app", **kwargs)  # type: ignore[arg-type]
    await cap.start()
    await cap.attach(RecordingHost({"Counter": EntityConfig()}))
    return cap


async def test_timers_and_reminders_get_the_router() -> None:
    timers, reminders = RecordingTimers(), RecordingReminders()
    cap = await started(timers=timers, reminders=reminders)
    assert timers.sink == cap.router.fire
    assert reminders.sink == cap.router.fire
    await cap.stop()
    assert timers.stopped and ("stop",) in reminders.done


async def test_timer_calls() -> None:
    timers = RecordingTimers()
    cap = await started(timers=timers)
    await cap.register_timer(A, "t", TimerSpec(period="1s"))
    await cap.unregister_timer(A, "t")
    assert timers.done == [("register", A, "t"), ("unregister", A, "t")]
    with pytest.raises(InvalidArgument) as bad:
        await cap.register_timer(A, "a/b", TimerSpec())
    assert bad.value.where == "actors.name"
    with pytest.raises(Internal) as err:
        await cap.register_timer(OTHER, "t", TimerSpec())
    assert err.value.where == "actors.timer_create"
    assert err.value.fields["detail"] == (
        "can't create timer for actor Other||1: actor type not registered")
    with pytest.raises(PermissionDenied) as reserved:
        await cap.register_timer(ActorRef("dapr.internal.a.activity", "1"), "t", TimerSpec())
    assert reserved.value.where == "actors.reserved"
    await cap.stop()


async def test_reminder_calls() -> None:
    reminders = RecordingReminders()
    cap = await started(reminders=reminders)
    await cap.register_reminder(A, "r", ReminderSpec(period="1s"), overwrite=False)
    await cap.unregister_reminder(A, "r")
    assert (await cap.get_reminder(A, "r")).spec.period == "1s"
    assert len(await cap.list_reminders("Counter", None)) == 1
    await cap.unregister_reminders("Counter", "a")
    assert reminders.done == [("register", A, "r", False), ("unregister", A, "r"),
                              ("unregister_all", "Counter", "a")]
    for attempt in (cap.register_reminder(OTHER, "r", ReminderSpec()),
                    cap.unregister_reminder(OTHER, "r"), cap.get_reminder(OTHER, "r"),
                    cap.list_reminders("Other", None), cap.unregister_reminders("Other", None)):
        with pytest.raises(PermissionDenied) as err:
            await attempt
        assert err.value.where == "actors.reminder_hosted"
    with pytest.raises(InvalidArgument):
        await cap.register_reminder(A, "..", ReminderSpec())
    await cap.stop()


async def test_without_timers_and_reminders() -> None:
    cap = await started()
    cases: list[tuple[object, str]] = [
        (cap.register_timer(A, "t", TimerSpec()), "actors.timer_create"),
        (cap.unregister_timer(A, "t"), "actors.timer_delete"),
        (cap.register_reminder(A, "r", ReminderSpec()), "actors.runtime"),
        (cap.get_reminder(A, "r"), "actors.runtime"),
        (cap.list_reminders("Counter", None), "actors.runtime"),
    ]
    for attempt, where in cases:
        with pytest.raises(NotConfigured) as err:
            await attempt  # type: ignore[misc]
        assert err.value.where == where
    await cap.stop()


async def test_status_before_and_after_start() -> None:
    cap = ActorsCapability(None, ActorsConfig(), "app")
    before = cap.status()
    assert before.runtime_status == "INITIALIZING"
    assert before.placement == "placement: disconnected" and not before.host_ready
    await cap.start()
    after = cap.status()
    assert after.runtime_status == "RUNNING" and after.host_ready
    assert after.placement == "placement: connected"
    await cap.stop()


async def test_calls_before_start_wait_for_it() -> None:
    import asyncio

    from pylotto.capabilities.actors.api import ActorCall

    cap = ActorsCapability(None, ActorsConfig(handover_timeout_seconds=10), "app")
    await cap.attach(RecordingHost({"Counter": EntityConfig()}))
    call = asyncio.create_task(cap.invoke(ActorCall(A, "m")))
    await asyncio.sleep(0.05)
    assert not call.done()
    await cap.start()
    assert (await call).data == b"echo:"
    await cap.stop()
    early = ActorsCapability(None, ActorsConfig(handover_timeout_seconds=0.05), "app")
    with pytest.raises(PylottoError) as err:
        await early.invoke(ActorCall(A, "m"))
    assert err.value.where == "actors.runtime"
