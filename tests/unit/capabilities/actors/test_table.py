"""The local runtime end to end on one sidecar: activation, turns, idle deactivation, halt and
drain, state and fencing, through a real ActorsCapability and an in-process app."""

from __future__ import annotations

import asyncio
import time

import pytest

from pylotto.capabilities.actors import ActorsCapability
from pylotto.capabilities.actors.api import (
    MOVED,
    ActorAnswer,
    ActorCall,
    ActorRef,
    EntityConfig,
    Reentrancy,
    StateOperation,
    Tick,
    TickKind,
)
from pylotto.components.state.base import Consistency, StateStore
from pylotto.core.errors import (
    InvalidArgument,
    NotConfigured,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unavailable,
)
from tests.unit.capabilities.actors.conftest import MakeRuntime
from tests.unit.capabilities.actors.host import Handler, RecordingHost, eventually

A = ActorRef("Counter", "a")
B = ActorRef("Counter", "b")


def counter(**kwargs: object) -> dict[str, EntityConfig]:
    return {"Counter": EntityConfig(**kwargs)}  # type: ignore[arg-type]


async def test_first_call_activates_and_calls_take_turns(runtime: MakeRuntime) -> None:
    gate = asyncio.Event()
    both_inside = asyncio.Event()

    async def slow(call: ActorCall, rid: str | None) -> ActorAnswer:
        if host.seen.inside.get(A, 0) and host.seen.inside.get(B, 0):
            both_inside.set()
        await gate.wait()
        return ActorAnswer(data=call.actor.id.encode())

    host = RecordingHost(counter(), handlers={"slow": slow})
    cap = await runtime()
    await cap.attach(host)
    assert cap.status().active == {"Counter": 0}
    calls = [asyncio.create_task(cap.invoke(ActorCall(actor, "slow")))
             for actor in (A, A, A, B, B)]
    await asyncio.wait_for(both_inside.wait(), 10)  # two ids run at once
    assert cap.status().active == {"Counter": 2}
    gate.set()
    answers = await asyncio.gather(*calls)
    assert [a.data for a in answers] == [b"a", b"a", b"a", b"b", b"b"]
    assert host.seen.most == {A: 1, B: 1}  # never two turns of one actor
    assert cap.status().runtime_status == "RUNNING"
    assert cap.status().placement == "placement: connected"


async def test_method_is_normalised_and_data_passed(runtime: MakeRuntime) -> None:
    host = RecordingHost(counter())
    cap = await runtime()
    await cap.attach(host)
    answer = await cap.invoke(ActorCall(A, "x/../get", data=b"hi"))
    assert answer.data == b"echo:hi"
    assert host.seen.calls == [(A, "get", None)]


async def test_idle_actor_is_deactivated_and_reactivated(runtime: MakeRuntime) -> None:
    host = RecordingHost(counter(idle_timeout=0.3))
    cap = await runtime()
    await cap.attach(host)
    await cap.invoke(ActorCall(A, "m"))
    await eventually(lambda: host.seen.deactivated == [A])
    assert cap.status().active == {"Counter": 0}
    await cap.invoke(ActorCall(A, "m"))
    assert cap.status().active == {"Counter": 1}
    await eventually(lambda: host.seen.deactivated == [A, A])


async def test_every_call_moves_the_idle_deadline(runtime: MakeRuntime) -> None:
    idle = 0.5
    deactivated_at: list[float] = []

    class Host(RecordingHost):
        async def deactivate(self, actor: ActorRef) -> bool:
            deactivated_at.append(time.monotonic())
            return await super().deactivate(actor)

    host = Host(counter(idle_timeout=idle))
    cap = await runtime()
    await cap.attach(host)
    called: list[tuple[float, float]] = []
    for _ in range(15):
        started = time.monotonic()
        await cap.invoke(ActorCall(A, "m"))
        called.append((started, time.monotonic()))
        await asyncio.sleep(idle / 5)
    await eventually(lambda: bool(deactivated_at))
    # A deactivation comes `idle` after the last call's turn at the earliest; every call
    # that ended before it started before that turn ended (whatever the machine's pauses).
    for at in deactivated_at:
        for started, ended in called:
            if ended < at:
                assert at - started >= idle - 0.001
    assert len(deactivated_at) <= len(called)


async def test_a_long_turn_is_never_idle(runtime: MakeRuntime) -> None:
    release = asyncio.Event()

    async def long(call: ActorCall, rid: str | None) -> ActorAnswer:
        await release.wait()
        return ActorAnswer()

    host = RecordingHost(counter(idle_timeout=0.1), handlers={"long": long})
    cap = await runtime()
    await cap.attach(host)
    task = asyncio.create_task(cap.invoke(ActorCall(A, "long")))
    await eventually(lambda: bool(host.seen.calls))
    await asyncio.sleep(0.5)  # five idle timeouts pass while the turn runs
    assert host.seen.deactivated == []
    release.set()
    await task
    await eventually(lambda: host.seen.deactivated == [A])


async def test_ticks_run_in_turns(runtime: MakeRuntime) -> None:
    host = RecordingHost(counter())
    cap = await runtime()
    await cap.attach(host)
    ticks = [Tick(A, TickKind.TIMER, f"t{n}", callback="cb") for n in range(5)]
    outcomes = await asyncio.gather(*(cap.router.fire(t) for t in ticks))
    assert all(o.delivered for o in outcomes)
    assert [t.name for t in host.seen.ticks] == [f"t{n}" for n in range(5)]
    assert host.seen.most[A] == 1
    undelivered = await cap.router.fire(Tick(ActorRef("Nope", "1"), TickKind.REMINDER, "r"))
    assert not undelivered.delivered


async def test_reentrancy_and_stack_depth(runtime: MakeRuntime) -> None:
    cap: ActorsCapability

    async def outer(call: ActorCall, rid: str | None) -> ActorAnswer:
        assert rid is not None
        inner = await cap.invoke(ActorCall(call.actor, "inner", reentrancy_id=rid))
        return ActorAnswer(data=b"outer+" + inner.data)

    async def deep(call: ActorCall, rid: str | None) -> ActorAnswer:
        return await cap.invoke(ActorCall(call.actor, "deep", reentrancy_id=rid))

    host = RecordingHost(counter(reentrancy=Reentrancy(enabled=True, max_stack_depth=32)),
                         handlers={"outer": outer, "deep": deep})
    cap = await runtime()
    await cap.attach(host)
    answer = await cap.invoke(ActorCall(A, "outer"))
    assert answer.data == b"outer+echo:"
    rids = {rid for _, _, rid in host.seen.calls}
    assert len(rids) == 1 and None not in rids  # the inner call ran in the outer's turn
    with pytest.raises(ResourceExhausted) as err:
        await cap.invoke(ActorCall(B, "deep"))
    assert err.value.where == "actors.stack_depth"
    assert sum(1 for actor, m, _ in host.seen.calls if actor == B) == 32
    assert (await cap.invoke(ActorCall(B, "m"))).data == b"echo:"  # nothing left held


async def test_halt_drains_then_deactivates(runtime: MakeRuntime) -> None:
    release = asyncio.Event()

    async def long(call: ActorCall, rid: str | None) -> ActorAnswer:
        await release.wait()
        return ActorAnswer(data=b"finished")

    host = RecordingHost(counter(drain_ongoing_call_timeout=30.0), handlers={"long": long})
    cap = await runtime(retry_interval=60.0)  # a woken call is placed again at once
    await cap.attach(host)
    running = asyncio.create_task(cap.invoke(ActorCall(A, "long")))
    await eventually(lambda: bool(host.seen.calls))
    queued = asyncio.create_task(cap.invoke(ActorCall(A, "after")))
    halting = asyncio.create_task(cap.table.halt(lambda ref: False, drain=True))
    await asyncio.sleep(0.1)
    assert not halting.done() and host.seen.deactivated == []  # waits for the turn
    release.set()
    assert (await running).data == b"finished"
    await halting
    # the queued call was woken by the deactivation, placed again, ran on a new activation
    assert (await asyncio.wait_for(queued, 30)).data == b"echo:"
    assert host.seen.deactivated == [A]
    assert [m for _, m, _ in host.seen.calls] == ["long", "after"]


async def test_drain_timeout_cancels_the_running_call(runtime: MakeRuntime) -> None:
    async def stuck(call: ActorCall, rid: str | None) -> ActorAnswer:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    host = RecordingHost(counter(drain_ongoing_call_timeout=0.2), handlers={"stuck": stuck})
    cap = await runtime()
    await cap.attach(host)
    call = asyncio.create_task(cap.invoke(ActorCall(A, "stuck")))
    await eventually(lambda: bool(host.seen.calls))
    await cap.table.halt(lambda ref: False, drain=True)
    with pytest.raises(Unavailable) as err:
        await call
    assert err.value.where == "actors.invoke"
    assert host.seen.deactivated == [A]


async def test_stop_deactivates_everything(runtime: MakeRuntime) -> None:
    host = RecordingHost(counter())
    cap = await runtime()
    await cap.attach(host)
    for n in range(5):
        await cap.invoke(ActorCall(ActorRef("Counter", str(n)), "m"))
    await cap.stop()
    assert sorted(ref.id for ref in host.seen.deactivated) == ["0", "1", "2", "3", "4"]
    with pytest.raises(Unavailable) as err:
        await cap.invoke(ActorCall(A, "m"))
    assert err.value.where == "actors.closed"
    assert cap.status().runtime_status != "RUNNING"


async def test_detach_removes_the_types(runtime: MakeRuntime) -> None:
    host = RecordingHost(counter())
    cap = await runtime(retries=1)
    await cap.attach(host)
    await cap.invoke(ActorCall(A, "m"))
    await cap.detach(host)
    assert host.seen.deactivated == [A]
    with pytest.raises(NotFound) as err:
        await cap.invoke(ActorCall(A, "m"))
    assert err.value.where == "actors.invoke"
    assert err.value.fields["detail"] == (
        "failed to lookup actor: did not find address for actor 'Counter||a'")


async def test_bad_input(runtime: MakeRuntime) -> None:
    cap = await runtime()
    await cap.attach(RecordingHost(counter()))
    with pytest.raises(PermissionDenied) as denied:
        await cap.invoke(ActorCall(ActorRef("dapr.internal.x.workflow", "1"), "m"))
    assert denied.value.where == "actors.reserved"
    with pytest.raises(InvalidArgument) as bad:
        await cap.invoke(ActorCall(ActorRef("Counter", "a/b"), "m"))
    assert bad.value.where == "actors.name"
    with pytest.raises(InvalidArgument):
        await cap.invoke(ActorCall(A, "m?x"))


async def test_state_and_transactions(runtime: MakeRuntime, store: StateStore) -> None:
    cap: ActorsCapability

    async def save(call: ActorCall, rid: str | None) -> ActorAnswer:
        await cap.transact(call.actor, [StateOperation("upsert", "k", call.data),
                                        StateOperation("delete", "gone")])
        return ActorAnswer()

    host = RecordingHost(counter(), handlers={"save": save})
    cap = await runtime()
    await cap.attach(host)
    with pytest.raises(NotFound) as missing:  # not active here
        await cap.transact(A, [StateOperation("upsert", "k", b"1")])
    assert missing.value.where == "actors.instance"
    await cap.invoke(ActorCall(A, "save", data=b'"v1"'))
    assert await cap.get_state(A, "k") == (b'"v1"', {})
    assert (await cap.get_state(A, "nothing"))[0] is None
    assert (await cap.get_state(B, "k"))[0] is None
    raw = await store.get("app||Counter||a||k", Consistency.UNSPECIFIED, {})
    assert raw is not None and raw.value == b'"v1"'
    with pytest.raises(Exception) as unsupported:
        await cap.transact(A, [StateOperation("upsert", "k", b"2"),
                               StateOperation("increment", "k")])
    assert getattr(unsupported.value, "where", "") == "actors.state_operation"
    assert (await cap.get_state(A, "k"))[0] == b'"v1"'  # all or nothing


async def test_no_store(runtime: MakeRuntime) -> None:
    cap = await runtime(with_store=False)
    await cap.attach(RecordingHost(counter()))
    assert (await cap.invoke(ActorCall(A, "m"))).data == b"echo:"  # calls still work
    for attempt in (cap.get_state(A, "k"), cap.transact(A, [StateOperation("upsert", "k")])):
        with pytest.raises(NotConfigured) as err:
            await attempt
        assert err.value.where == "actors.runtime"


async def test_fencing_stops_a_stale_owner(runtime: MakeRuntime) -> None:
    """Two sidecars that both believe they own actor A (what a paused sidecar that lost its
    lease is): the later activation wins; the stale one's transaction is refused and it
    deactivates."""
    caps: dict[str, ActorsCapability] = {}

    def saver(name: str) -> Handler:
        async def save(call: ActorCall, rid: str | None) -> ActorAnswer:
            await caps[name].transact(call.actor, [StateOperation("upsert", "k", call.data)])
            return ActorAnswer()
        return save

    old_host = RecordingHost(counter(), handlers={"save": saver("old")})
    new_host = RecordingHost(counter(), handlers={"save": saver("new")})
    caps["old"] = await runtime()
    caps["new"] = await runtime()
    await caps["old"].attach(old_host)
    await caps["new"].attach(new_host)
    await caps["old"].invoke(ActorCall(A, "save", data=b"1"))
    await caps["new"].invoke(ActorCall(A, "save", data=b"2"))  # activates A there too
    with pytest.raises(NotFound) as err:
        await caps["old"].invoke(ActorCall(A, "save", data=b"stale"))
    assert err.value.where == "actors.instance"
    await eventually(lambda: old_host.seen.deactivated == [A])
    assert (await caps["new"].get_state(A, "k"))[0] == b"2"
    await caps["new"].invoke(ActorCall(A, "save", data=b"3"))
    assert (await caps["new"].get_state(A, "k"))[0] == b"3"
    # the old sidecar, once it activates A again, is the owner (and the new one is stale)
    await caps["old"].invoke(ActorCall(A, "save", data=b"4"))
    with pytest.raises(NotFound):
        await caps["new"].invoke(ActorCall(A, "save", data=b"5"))
    assert (await caps["old"].get_state(A, "k"))[0] == b"4"


async def test_without_fencing_both_write(runtime: MakeRuntime) -> None:
    caps: dict[str, ActorsCapability] = {}

    def saver(name: str) -> Handler:
        async def save(call: ActorCall, rid: str | None) -> ActorAnswer:
            await caps[name].transact(call.actor, [StateOperation("upsert", "k", call.data)])
            return ActorAnswer()
        return save

    for name in ("x", "y"):
        caps[name] = await runtime(fencing=False)
        await caps[name].attach(RecordingHost(counter(), handlers={"save": saver(name)}))
    await caps["x"].invoke(ActorCall(A, "save", data=b"1"))
    await caps["y"].invoke(ActorCall(A, "save", data=b"2"))
    await caps["x"].invoke(ActorCall(A, "save", data=b"3"))
    assert (await caps["y"].get_state(A, "k"))[0] == b"3"


async def test_not_owned_is_moved(runtime: MakeRuntime) -> None:
    cap = await runtime()
    with pytest.raises(Unavailable) as err:
        await cap.local.run(ActorCall(A, "m", forwarded=True))
    assert err.value.where == MOVED


async def test_calls_racing_idle_deactivations(runtime: MakeRuntime) -> None:
    """Many ids, calls and ticks at random moments, an idle timeout as short as the gaps:
    activations and deactivations race the calls. Never two turns of one id at once, never a
    turn during its deactivation, every call answered."""
    import random

    rng = random.Random(19)
    host = RecordingHost(counter(idle_timeout=0.02))
    cap = await runtime()
    await cap.attach(host)
    actors = [ActorRef("Counter", str(n)) for n in range(50)]

    async def client(n: int) -> int:
        done = 0
        for _ in range(40):
            actor = rng.choice(actors)
            if rng.random() < 0.2:
                outcome = await cap.router.fire(Tick(actor, TickKind.TIMER, "t"))
                assert outcome.delivered
            else:
                assert (await cap.invoke(ActorCall(actor, "m", data=b"x"))).data == b"echo:x"
            done += 1
            await asyncio.sleep(rng.random() * 0.03)
        return done

    assert sum(await asyncio.gather(*(client(n) for n in range(40)))) == 40 * 40
    assert host.seen.violations == []
    assert max(host.seen.most.values()) == 1
    await eventually(lambda: cap.status().active == {"Counter": 0})
    assert len(host.seen.deactivated) >= len({a for a, _, _ in host.seen.calls})


async def test_reentrant_call_of_a_draining_turn_runs(runtime: MakeRuntime) -> None:
    """A drain waits for the running turn; that turn's own reentrant call is let in (else
    both would wait for each other until the drain timeout)."""
    cap: ActorsCapability
    go = asyncio.Event()

    async def outer(call: ActorCall, rid: str | None) -> ActorAnswer:
        await go.wait()
        inner = await cap.invoke(ActorCall(call.actor, "inner", reentrancy_id=rid))
        return ActorAnswer(data=b"outer+" + inner.data)

    host = RecordingHost(counter(reentrancy=Reentrancy(enabled=True),
                                 drain_ongoing_call_timeout=60.0), handlers={"outer": outer})
    cap = await runtime(retry_interval=60.0)
    await cap.attach(host)
    call = asyncio.create_task(cap.invoke(ActorCall(A, "outer")))
    await eventually(lambda: bool(host.seen.calls))
    halting = asyncio.create_task(cap.table.halt(lambda ref: False, drain=True))
    await eventually(lambda: cap.table.get(A) is not None and cap.table.get(A).turns.closed)  # type: ignore[union-attr]
    go.set()
    assert (await asyncio.wait_for(call, 30)).data == b"outer+echo:"
    await asyncio.wait_for(halting, 30)
    assert host.seen.deactivated == [A]
    assert host.seen.violations == []


async def test_fencing_survives_a_failed_read_back(tmp_path: object) -> None:
    """The owner record's etag is read back after each commit; when that read fails, the
    commit stands and the etag is read before the next transaction."""
    from pathlib import Path

    from pylotto.capabilities.actors import ActorState
    from pylotto.components.base import ComponentContext
    from pylotto.config.model import ActorsConfig
    from pylotto.core.errors import Unavailable as Down
    from pylotto.core.metadata import decode
    from pylotto.core.registry import resolve
    from tests.unit.capabilities.actors.conftest import APP, STORE, state_over

    base = resolve("state", "in-memory")
    fail_owner_reads = 0

    class FlakyOwnerReads(base):  # type: ignore[misc, valid-type]
        async def get(self, key: str, consistency: Consistency,
                      metadata: dict[str, str]) -> object:
            nonlocal fail_owner_reads
            if key.startswith("_actors.") and fail_owner_reads:
                fail_owner_reads -= 1
                raise Down("the store blinked")
            return await super().get(key, consistency, metadata)

    store = FlakyOwnerReads(STORE, decode(base.Settings, {}, component="state.s"),
                            ComponentContext(app_id=APP, data_dir=Path(str(tmp_path))))
    await store.init()
    cap: ActorsCapability

    async def save(call: ActorCall, rid: str | None) -> ActorAnswer:
        nonlocal fail_owner_reads
        if call.data == b"2":
            fail_owner_reads = 1  # the read back after this commit fails
        await cap.transact(call.actor, [StateOperation("upsert", "k", call.data)])
        return ActorAnswer()

    cap = ActorsCapability(ActorState(state_over(store), STORE, APP), ActorsConfig(), APP)
    await cap.start()
    await cap.attach(RecordingHost(counter(), handlers={"save": save}))
    for value in (b"1", b"2", b"3"):
        await cap.invoke(ActorCall(A, "save", data=value))
    assert (await cap.get_state(A, "k"))[0] == b"3"
    assert fail_owner_reads == 0
    await cap.stop()
    await store.close()
