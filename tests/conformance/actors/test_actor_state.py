"""Actor state on every state store of the state suite's cases.yaml (docs/design/actors.md §3
"State", §4.1 "Fencing of state writes"): get and transactions straight on the component (no
``keyPrefix``, keys ``<appid>||<type>||<id>||<key>``), per-key TTL, the fencing of a stale
owner — on every store with ETAG and TRANSACTIONAL; the others (memcached, the node pluggable
component) are refused at start-up.

The runtime is real (ActorsCapability on one-sidecar placement); the app is an in-process
host (tests/unit/capabilities/actors/host.py) whose methods call back into the runtime, as an
SDK actor saving its state does. Two runtimes over one backend stand for two sidecars.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path

import pytest

from pylotto.capabilities.actors import ActorsCapability, ActorState
from pylotto.capabilities.actors.api import (
    ActorAnswer,
    ActorCall,
    ActorRef,
    EntityConfig,
    StateOperation,
)
from pylotto.capabilities.actors.state import qualifies
from pylotto.components.state.base import Consistency, Feature, StateStore
from pylotto.config.model import ActorsConfig
from pylotto.core.errors import NotConfigured, NotFound, PylottoError, Unsupported
from tests.conformance.cases import RUN_PREFIX, Case, build, load_cases
from tests.conformance.state.support import capability_over
from tests.unit.capabilities.actors.host import Handler, RecordingHost, eventually

TYPE = "Cart"


def _qualifying(case: Case) -> bool:
    return case.has(Feature.ETAG) and case.has(Feature.TRANSACTIONAL)


QUALIFYING = load_cases("state", where=_qualifying)
REFUSED = load_cases("state", where=lambda c: not _qualifying(c))


class Sidecars:
    """Actor runtimes of one app id over the case's backend (``second()``: another sidecar,
    with its own component where the backend is shared, else the same component)."""

    def __init__(self, case: Case, tmp_path: Path, stack: AsyncExitStack) -> None:
        self.case, self.tmp_path, self.stack = case, tmp_path, stack
        self.app_id = f"{RUN_PREFIX}-{uuid.uuid4().hex[:8]}"
        self.stores: list[StateStore] = []
        self.runtimes: list[ActorsCapability] = []

    async def component(self) -> StateStore:
        if self.stores and not self.case.shared:
            return self.stores[0]
        store = await self.stack.enter_async_context(build(
            self.case, self.tmp_path, app_id=self.app_id, instance=str(len(self.stores)),
            keyPrefix="appid"))
        assert isinstance(store, StateStore)
        self.stores.append(store)
        return store

    async def runtime(self, handlers: dict[str, Handler], *, fencing: bool = True
                      ) -> tuple[ActorsCapability, RecordingHost]:
        store = await self.component()
        state = capability_over(store, self.app_id)
        cap = ActorsCapability(ActorState(state, "store", self.app_id),
                               ActorsConfig(fencing=fencing), self.app_id,
                               retries=2, retry_interval=0.05)
        await cap.start()
        self.stack.push_async_callback(cap.stop)
        host = RecordingHost({TYPE: EntityConfig()}, handlers=handlers)
        await cap.attach(host)
        self.runtimes.append(cap)
        return cap, host


@pytest.fixture
async def sidecars(request: pytest.FixtureRequest, tmp_path: Path
                   ) -> AsyncIterator[Sidecars]:
    case: Case = request.param
    async with AsyncExitStack() as stack:
        yield Sidecars(case, tmp_path, stack)


def saving(cap: Callable[[], ActorsCapability]) -> dict[str, Handler]:
    """The app's methods: ``save`` applies the JSON-free op list in the call's data
    (``op key value`` lines), ``noop`` does nothing."""

    async def save(call: ActorCall, rid: str | None) -> ActorAnswer:
        ops = []
        for line in call.data.decode().splitlines():
            op, key, *rest = line.split(" ", 2)
            value = rest[0].encode() if rest else b""
            metadata = {}
            if op == "upsert-ttl":
                op, metadata = "upsert", {"ttlInSeconds": "1"}
            ops.append(StateOperation(op, key, value, metadata))
        await cap().transact(call.actor, ops)
        return ActorAnswer(data=b"saved")

    async def noop(call: ActorCall, rid: str | None) -> ActorAnswer:
        return ActorAnswer()

    return {"save": save, "noop": noop}


async def single(sidecars: Sidecars, fencing: bool = True
                 ) -> tuple[ActorsCapability, RecordingHost]:
    holder: list[ActorsCapability] = []
    cap, host = await sidecars.runtime(saving(lambda: holder[0]), fencing=fencing)
    holder.append(cap)
    return cap, host


def ops(*lines: str) -> bytes:
    return "\n".join(lines).encode()


parametrize = pytest.mark.parametrize("sidecars", QUALIFYING, indirect=True)


@parametrize
async def test_transaction_then_get(sidecars: Sidecars) -> None:
    cap, _ = await single(sidecars)
    actor = ActorRef(TYPE, "c1")
    assert (await cap.get_state(actor, "items"))[0] is None  # reads need no activation
    answer = await cap.invoke(ActorCall(actor, "save", data=ops(
        'upsert items ["apple","pear"]', "upsert total 2")))
    assert answer.data == b"saved"
    assert (await cap.get_state(actor, "items"))[0] == b'["apple","pear"]'
    assert (await cap.get_state(actor, "total"))[0] == b"2"
    assert (await cap.get_state(ActorRef(TYPE, "c2"), "items"))[0] is None
    # the key as daprd writes it, without the component's keyPrefix
    raw = await sidecars.stores[0].get(f"{sidecars.app_id}||{TYPE}||c1||items",
                                       Consistency.UNSPECIFIED, {})
    assert raw is not None and raw.value == b'["apple","pear"]'


@parametrize
async def test_delete_and_overwrite(sidecars: Sidecars) -> None:
    cap, _ = await single(sidecars)
    actor = ActorRef(TYPE, "c1")
    await cap.invoke(ActorCall(actor, "save", data=ops("upsert a 1", "upsert b 1")))
    await cap.invoke(ActorCall(actor, "save", data=ops("delete a", "upsert b 2",
                                                       "delete never-there")))
    assert (await cap.get_state(actor, "a"))[0] is None
    assert (await cap.get_state(actor, "b"))[0] == b"2"


@parametrize
async def test_unknown_operation_writes_nothing(sidecars: Sidecars) -> None:
    cap, _ = await single(sidecars)
    actor = ActorRef(TYPE, "c1")
    await cap.invoke(ActorCall(actor, "save", data=ops("upsert a 1")))
    with pytest.raises(Unsupported) as err:
        await cap.invoke(ActorCall(actor, "save", data=ops("upsert a 2", "merge a 3")))
    assert err.value.where == "actors.state_operation"
    assert (await cap.get_state(actor, "a"))[0] == b"1"


@parametrize
async def test_transaction_needs_the_actor_active_here(sidecars: Sidecars) -> None:
    cap, _ = await single(sidecars)
    with pytest.raises(NotFound) as err:
        await cap.transact(ActorRef(TYPE, "idle"), [StateOperation("upsert", "a", b"1")])
    assert err.value.where == "actors.instance"
    assert err.value.message == "actor instance is missing"


@parametrize
async def test_per_key_ttl(sidecars: Sidecars) -> None:
    cap, _ = await single(sidecars)
    actor = ActorRef(TYPE, "c1")
    if not sidecars.case.has(Feature.TTL):
        with pytest.raises(Unsupported) as err:
            await cap.invoke(ActorCall(actor, "save", data=ops("upsert-ttl a 1")))
        assert "ttlInSeconds" in err.value.message
        return
    await cap.invoke(ActorCall(actor, "save", data=ops("upsert-ttl a 1", "upsert b 1")))
    value, metadata = await cap.get_state(actor, "a")
    assert value in (b"1", None)  # a slow machine may see it gone already
    if value is not None:
        assert "ttlExpireTime" in metadata

    async def gone() -> bool:
        return (await cap.get_state(actor, "a"))[0] is None

    await _until(gone, within=15)
    assert (await cap.get_state(actor, "b"))[0] == b"1"


async def _until(check: Callable[[], Awaitable[bool]], within: float) -> None:
    import asyncio

    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not await check():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.2)


@parametrize
async def test_fencing_refuses_a_stale_owner(sidecars: Sidecars) -> None:
    """Two sidecars both running actor c1 (the stale one stands for a paused sidecar whose
    lease ran out): the later activation owns the state; the stale one's transaction fails
    with actors.instance, it deactivates the actor, and nothing it tried is written."""
    old_holder: list[ActorsCapability] = []
    new_holder: list[ActorsCapability] = []
    old, old_host = await sidecars.runtime(saving(lambda: old_holder[0]))
    old_holder.append(old)
    new, new_host = await sidecars.runtime(saving(lambda: new_holder[0]))
    new_holder.append(new)
    actor = ActorRef(TYPE, "c1")
    await old.invoke(ActorCall(actor, "save", data=ops("upsert owner old")))
    await new.invoke(ActorCall(actor, "save", data=ops("upsert owner new")))
    with pytest.raises(NotFound) as err:
        await old.invoke(ActorCall(actor, "save", data=ops("upsert owner stale",
                                                           "upsert extra stale")))
    assert err.value.where == "actors.instance"
    await eventually(lambda: old_host.seen.deactivated == [actor])
    assert (await new.get_state(actor, "owner"))[0] == b"new"
    assert (await new.get_state(actor, "extra"))[0] is None  # all or nothing
    await new.invoke(ActorCall(actor, "save", data=ops("upsert owner new-again")))
    assert (await old.get_state(actor, "owner"))[0] == b"new-again"
    assert new_host.seen.deactivated == []


@parametrize
async def test_without_fencing_every_sidecar_writes(sidecars: Sidecars) -> None:
    holders: list[list[ActorsCapability]] = [[], []]
    caps = []
    for holder in holders:
        cap, _ = await sidecars.runtime(saving(lambda h=holder: h[0]),  # type: ignore[misc]
                                        fencing=False)
        holder.append(cap)
        caps.append(cap)
    actor = ActorRef(TYPE, "c1")
    await caps[0].invoke(ActorCall(actor, "save", data=ops("upsert v 1")))
    await caps[1].invoke(ActorCall(actor, "save", data=ops("upsert v 2")))
    await caps[0].invoke(ActorCall(actor, "save", data=ops("upsert v 3")))
    assert (await caps[1].get_state(actor, "v"))[0] == b"3"


@pytest.mark.parametrize("case", REFUSED)
async def test_store_without_etags_and_transactions_is_refused(case: Case,
                                                               tmp_path: Path) -> None:
    async with build(case, tmp_path, app_id=f"{RUN_PREFIX}-refused") as store:
        assert not qualifies(store)
        state = capability_over(store)
        cap = ActorsCapability(ActorState(state, "store", "app"), ActorsConfig(), "app")
        with pytest.raises(NotConfigured) as err:
            await cap.start()
        assert err.value.where == "actors.runtime"
        assert "actorStateStore" in err.value.message
        with pytest.raises(PylottoError) as again:  # each call checks again
            await ActorState(state, "store", "app").get(ActorRef(TYPE, "1"), "k")
        assert again.value.where == "actors.runtime"


def test_the_refusal_case_is_there() -> None:
    names = {param.values[0].name for param in REFUSED}
    assert "memcached" in names
    qualifying = {param.values[0].name for param in QUALIFYING}
    assert {"in-memory", "sqlite", "redis", "postgresql", "mysql", "etcd",
            "zookeeper"} <= qualifying

