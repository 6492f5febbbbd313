"""The router: local or forwarded, "moved" retries, the forwarded guard, the unknown type —
with a scripted Placement and Forwarder (the other sidecars), the local side real."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Mapping

import pytest

from pylotto.capabilities.actors import ActorsCapability
from pylotto.capabilities.actors.api import (
    MOVED,
    ActorAnswer,
    ActorCall,
    ActorRef,
    EntityConfig,
    Forwarder,
    Location,
    Placement,
    PlacementListener,
    Tick,
    TickKind,
    TickOutcome,
)
from pylotto.capabilities.actors.router import no_address
from pylotto.config.model import ActorsConfig
from pylotto.core.errors import Internal, NotFound, Unavailable
from pylotto.core.resiliency import RetryPolicy
from tests.unit.capabilities.actors.host import RecordingHost

A = ActorRef("Counter", "a")


class ScriptedPlacement(Placement):
    """Answers ``locate`` from a script (a Location, or an exception to raise), then the
    last entry for ever."""

    def __init__(self, *script: Location | Exception) -> None:
        self.script = deque(script)
        self.located = 0
        self.local_ok = True

    async def start(self, hosted: Mapping[str, EntityConfig],
                    listener: PlacementListener) -> None:
        pass

    async def update(self, hosted: Mapping[str, EntityConfig]) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def locate(self, actor: ActorRef) -> Location:
        self.located += 1
        step = self.script[0] if len(self.script) == 1 else self.script.popleft()
        if isinstance(step, Exception):
            raise step
        return step

    def owns(self, actor: ActorRef) -> bool:
        return self.local_ok

    @property
    def connected(self) -> bool:
        return True

    @property
    def ready(self) -> bool:
        return True


class ScriptedForwarder(Forwarder):
    def __init__(self, *answers: ActorAnswer | Exception) -> None:
        self.answers = deque(answers)
        self.sent: list[tuple[str, ActorCall | Tick]] = []

    def _next(self) -> ActorAnswer | Exception:
        return self.answers[0] if len(self.answers) == 1 else self.answers.popleft()

    async def call(self, address: str, call: ActorCall) -> ActorAnswer:
        self.sent.append((address, call))
        step = self._next()
        if isinstance(step, Exception):
            raise step
        return step

    async def fire(self, address: str, tick: Tick) -> TickOutcome:
        self.sent.append((address, tick))
        step = self._next()
        if isinstance(step, Exception):
            raise step
        return TickOutcome(delivered=True)


REMOTE = Location(local=False, address="10.0.0.2:50002")
HERE = Location(local=True)


def moved() -> Unavailable:
    return Unavailable("actor moved", where=MOVED)


async def make(placement: Placement, forwarder: Forwarder | None = None,
               retries: int = 5) -> tuple[ActorsCapability, RecordingHost]:
    cap = ActorsCapability(None, ActorsConfig(), "app", placement=placement,
                           forwarder=forwarder, retries=retries, retry_interval=0.01)
    host = RecordingHost({"Counter": EntityConfig()})
    await cap.start()
    await cap.attach(host)
    return cap, host


async def test_remote_call_is_forwarded_marked() -> None:
    forwarder = ScriptedForwarder(ActorAnswer(data=b"remote"))
    cap, host = await make(ScriptedPlacement(REMOTE), forwarder)
    assert (await cap.invoke(ActorCall(A, "m"))).data == b"remote"
    address, sent = forwarder.sent[0]
    assert address == REMOTE.address
    assert isinstance(sent, ActorCall) and sent.forwarded
    assert host.seen.calls == []
    await cap.stop()


async def test_moved_is_retried_after_locating_again() -> None:
    placement = ScriptedPlacement(REMOTE, REMOTE, HERE)
    forwarder = ScriptedForwarder(moved(), Unavailable("connection refused"))
    cap, host = await make(placement, forwarder)
    assert (await cap.invoke(ActorCall(A, "m"))).data == b"echo:"
    assert placement.located == 3
    assert len(forwarder.sent) == 2
    assert len(host.seen.calls) == 1
    await cap.stop()


async def test_retries_run_out() -> None:
    placement = ScriptedPlacement(REMOTE)
    forwarder = ScriptedForwarder(moved())
    cap, _ = await make(placement, forwarder, retries=5)
    with pytest.raises(Unavailable) as err:
        await cap.invoke(ActorCall(A, "m"))
    assert err.value.where == MOVED
    assert len(forwarder.sent) == 6  # the first try and 5 retries
    await cap.stop()


async def test_other_errors_are_not_retried() -> None:
    forwarder = ScriptedForwarder(Internal("the app failed"))
    cap, _ = await make(ScriptedPlacement(REMOTE), forwarder)
    with pytest.raises(Internal) as err:
        await cap.invoke(ActorCall(A, "m"))
    assert err.value.where == "actors.invoke"
    assert len(forwarder.sent) == 1
    await cap.stop()


async def test_unknown_type_after_the_retries() -> None:
    placement = ScriptedPlacement(no_address(A))
    cap, _ = await make(placement, retries=3)
    with pytest.raises(NotFound) as err:
        await cap.invoke(ActorCall(A, "m"))
    assert placement.located == 4
    assert err.value.where == "actors.invoke"
    assert err.value.message == ("error invoke actor method: failed to lookup actor: did not "
                                 "find address for actor 'Counter||a'")
    await cap.stop()


async def test_a_not_found_retries_policy_of_none_answers_at_once() -> None:
    placement = ScriptedPlacement(no_address(A))
    cap = ActorsCapability(None, ActorsConfig(), "app", placement=placement,
                           retry_policy=RetryPolicy(max_retries=0))
    await cap.start()
    started = time.monotonic()
    with pytest.raises(NotFound, match="did not find address for actor 'Counter\\|\\|a'"):
        await cap.invoke(ActorCall(A, "m"))
    assert placement.located == 1 and time.monotonic() - started < 0.5
    await cap.stop()


async def test_a_not_found_retries_policy_sets_the_retries_and_their_delays() -> None:
    placement = ScriptedPlacement(no_address(A))
    policy = RetryPolicy(policy="exponential", initial_interval=0.01, max_interval=0.04,
                         max_retries=4)
    cap = ActorsCapability(None, ActorsConfig(), "app", placement=placement,
                           retry_policy=policy)
    await cap.start()
    started = time.monotonic()
    with pytest.raises(NotFound):
        await cap.invoke(ActorCall(A, "m"))
    assert placement.located == 5  # the first try and 4 retries
    assert time.monotonic() - started >= 0.01 + 0.02 + 0.04 + 0.04
    await cap.stop()


async def test_type_appears_during_the_retries() -> None:
    placement = ScriptedPlacement(no_address(A), no_address(A), HERE)
    cap, host = await make(placement)
    assert (await cap.invoke(ActorCall(A, "m"))).data == b"echo:"
    assert placement.located == 3 and len(host.seen.calls) == 1
    await cap.stop()


async def test_a_forwarded_call_is_never_forwarded_again() -> None:
    forwarder = ScriptedForwarder(ActorAnswer(data=b"no"))
    cap, _ = await make(ScriptedPlacement(REMOTE), forwarder)
    with pytest.raises(Unavailable) as err:
        await cap.router.call(ActorCall(A, "m", forwarded=True))
    assert err.value.where == MOVED
    assert forwarder.sent == []
    await cap.stop()


async def test_local_but_not_owned_any_more_is_moved_then_retried() -> None:
    placement = ScriptedPlacement(HERE)
    placement.local_ok = False
    forwarder = ScriptedForwarder(ActorAnswer())
    cap, host = await make(placement, forwarder, retries=2)
    with pytest.raises(Unavailable) as err:
        await cap.invoke(ActorCall(A, "m"))
    assert err.value.where == MOVED
    assert placement.located == 3
    assert host.seen.calls == []
    await cap.stop()


async def test_ticks_go_where_the_actor_is() -> None:
    forwarder = ScriptedForwarder(ActorAnswer())
    cap, host = await make(ScriptedPlacement(REMOTE, HERE), forwarder)
    tick = Tick(A, TickKind.REMINDER, "r")
    assert (await cap.router.fire(tick)).delivered
    assert forwarder.sent == [(REMOTE.address, tick)]
    assert (await cap.router.fire(tick)).delivered
    assert host.seen.ticks == [tick]
    await cap.stop()


async def test_undeliverable_tick_is_reported_not_raised() -> None:
    forwarder = ScriptedForwarder(moved())
    cap, _ = await make(ScriptedPlacement(REMOTE), forwarder)
    assert not (await cap.router.fire(Tick(A, TickKind.TIMER, "t"))).delivered
    assert len(forwarder.sent) == cap.router.tick_attempts
    await cap.stop()


async def test_a_reentrant_call_runs_where_its_turn_runs() -> None:
    """Placement has moved the actor (a rebalance); the reentrant call of its running turn
    still runs here, not forwarded."""
    from pylotto.capabilities.actors.api import Reentrancy

    placement = ScriptedPlacement(HERE)
    forwarder = ScriptedForwarder(ActorAnswer(data=b"forwarded"))
    cap = ActorsCapability(None, ActorsConfig(), "app", placement=placement,
                           forwarder=forwarder, retries=0, retry_interval=0.01)
    answers: list[bytes] = []

    async def outer(call: ActorCall, rid: str | None) -> ActorAnswer:
        placement.script = deque([REMOTE])
        placement.local_ok = False
        answers.append((await cap.invoke(ActorCall(A, "inner", reentrancy_id=rid))).data)
        answers.append((await cap.invoke(ActorCall(A, "other"))).data)  # not reentrant
        return ActorAnswer()

    await cap.start()
    await cap.attach(RecordingHost({"Counter": EntityConfig(reentrancy=Reentrancy(True))},
                                   handlers={"outer": outer}))
    await cap.invoke(ActorCall(A, "outer"))
    assert answers == [b"echo:", b"forwarded"]
    await cap.stop()
