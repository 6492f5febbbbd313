"""The sequencer conformance suite: every test runs against every case of cases.yaml."""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from pylotto.capabilities.base import ComponentSet, RuntimeContext
from pylotto.capabilities.sequencer import Increment, SequencerCapability
from pylotto.components.base import Component
from pylotto.components.sequencer.base import Feature, Sequencer
from pylotto.config.model import AppConfig
from pylotto.core.errors import ConfigError, Unavailable
from pylotto.proto.layotto import runtime_pb2, runtime_pb2_grpc
from tests.conformance.cases import (
    RUN_PREFIX,
    Case,
    FallsBack,
    Undeclared,
    assert_declares_exactly,
    build,
    load_cases,
    once_back,
    undeclared,
)
from tests.conformance.conftest import STORE, StartSidecar
from tests.support.tcp_proxy import TcpProxy

pytestmark = pytest.mark.timeout(120)
WEAK, STRONG = Increment.WEAK, Increment.STRONG


@pytest.fixture(params=load_cases("sequencer"))
def case(request: pytest.FixtureRequest) -> Case:
    chosen: Case = request.param
    return chosen


def cases_where(trait: str) -> list[Any]:
    return load_cases("sequencer", where=lambda c: trait in c.traits)


async def started(store: Sequencer) -> SequencerCapability:
    capability = SequencerCapability(
        ComponentSet("sequencer store", {STORE: store}),
        RuntimeContext(AppConfig(app_id="conformance"), Path("/nonexistent")))
    await capability.start()
    return capability


@pytest.fixture
async def sequencer(case: Case, tmp_path: Path) -> AsyncIterator[SequencerCapability]:
    async with build(case, tmp_path) as component:
        assert isinstance(component, Sequencer)
        capability = await started(component)
        yield capability
        await capability.stop()


@pytest.fixture
def key() -> str:
    return f"{RUN_PREFIX}-{uuid.uuid4().hex[:12]}"


async def test_declares_exactly_the_case_features(case: Case, tmp_path: Path) -> None:
    async with build(case, tmp_path) as component:
        assert_declares_exactly(case, component)


async def weak_ids_are_not_reserved(case: Case, component: Component) -> None:
    """Without SEGMENT a WEAK request is served like a STRONG one: nothing is reserved, so
    another sidecar's next id follows the first one's WEAK ids directly."""
    assert isinstance(component, Sequencer)
    key = f"{RUN_PREFIX}-{uuid.uuid4().hex[:12]}"
    first, second = await started(component), await started(component)
    weak = [await first.get_next_id(STORE, key, WEAK) for _ in range(5)]
    strong = await second.get_next_id(STORE, key, STRONG)
    assert strong > weak[-1]
    if "consecutive" in case.traits:
        assert weak == list(range(weak[0], weak[0] + 5)) and strong == weak[-1] + 1
    await first.stop()
    await second.stop()


UNDECLARED: dict[str, Undeclared] = {Feature.SEGMENT: FallsBack(weak_ids_are_not_reserved)}
"""What happens to a feature a case does not list."""


@pytest.mark.parametrize(("case", "feature"), undeclared("sequencer", UNDECLARED),
                         indirect=["case"])
async def test_an_undeclared_feature_is_refused_or_falls_back(
    case: Case, feature: str, tmp_path: Path
) -> None:
    async with build(case, tmp_path) as component:
        await UNDECLARED[feature].check(case, component)


@pytest.mark.parametrize("increment", [WEAK, STRONG], ids=["weak", "strong"])
async def test_ids_strictly_increase(
    sequencer: SequencerCapability, key: str, increment: Increment
) -> None:
    ids = [await sequencer.get_next_id(STORE, key, increment) for _ in range(300)]
    assert all(a < b for a, b in itertools.pairwise(ids))
    assert ids[0] > 0


@pytest.mark.parametrize("case", cases_where("consecutive"), indirect=True)
async def test_strong_ids_are_consecutive(sequencer: SequencerCapability, key: str) -> None:
    ids = [await sequencer.get_next_id(STORE, key, STRONG) for _ in range(50)]
    assert ids == list(range(1, 51))


async def test_keys_are_independent(case: Case, sequencer: SequencerCapability, key: str) -> None:
    a = [await sequencer.get_next_id(STORE, f"{key}-a", STRONG) for _ in range(3)]
    b = [await sequencer.get_next_id(STORE, f"{key}-b", STRONG) for _ in range(3)]
    if "consecutive" in case.traits:
        assert a == b == [1, 2, 3]
    else:
        assert a[-1] < b[0]  # one generator for every key: still increasing, never shared


async def test_concurrent_weak_and_strong_requests_never_repeat(
    sequencer: SequencerCapability, key: str
) -> None:
    increments = [WEAK if n % 3 else STRONG for n in range(600)]
    ids = await asyncio.gather(*(sequencer.get_next_id(STORE, key, inc) for inc in increments))
    assert len(set(ids)) == len(ids)


async def test_mixed_weak_and_strong_keep_increasing(
    sequencer: SequencerCapability, key: str
) -> None:
    ids = []
    for n in range(200):
        ids.append(await sequencer.get_next_id(STORE, key, STRONG if n % 7 == 0 else WEAK))
    assert all(a < b for a, b in itertools.pairwise(ids))


@pytest.mark.parametrize("case", load_cases("sequencer", where=lambda c: c.has("SEGMENT")),
                         indirect=True)
async def test_weak_requests_are_served_from_a_reserved_segment(
    case: Case, tmp_path: Path, key: str
) -> None:
    """Another sidecar's first id (here: a second capability over the same component) comes
    after the whole segment the first one reserved."""
    async with build(case, tmp_path) as component:
        assert isinstance(component, Sequencer)
        first, second = await started(component), await started(component)
        weak = [await first.get_next_id(STORE, key, WEAK) for _ in range(5)]
        assert weak == list(range(weak[0], weak[0] + 5))
        strong = await second.get_next_id(STORE, key, STRONG)
        size = int(case.metadata.get("segmentSize", 1000))
        assert strong >= weak[0] + size
        await first.stop()
        await second.stop()


async def test_bigger_than_is_honoured(case: Case, tmp_path: Path, key: str) -> None:
    floor = 5000
    async with build(case, tmp_path, biggerThan=f'{{"{key}": {floor}}}') as component:
        assert isinstance(component, Sequencer)
        capability = await started(component)
        assert await capability.get_next_id(STORE, key, STRONG) > floor
        assert await capability.get_next_id(STORE, key, WEAK) > floor
        await capability.stop()


@pytest.mark.parametrize("case", cases_where("durable"), indirect=True)
async def test_bigger_than_never_moves_ids_back(case: Case, tmp_path: Path, key: str) -> None:
    async with build(case, tmp_path) as component:
        assert isinstance(component, Sequencer)
        capability = await started(component)
        issued = [await capability.get_next_id(STORE, key, STRONG) for _ in range(5)]
        await capability.stop()
    async with build(case, tmp_path, biggerThan=f'{{"{key}": 2}}') as component:
        assert isinstance(component, Sequencer)
        capability = await started(component)
        assert await capability.get_next_id(STORE, key, STRONG) > issued[-1]
        await capability.stop()


@pytest.mark.parametrize("case", load_cases("sequencer", where=lambda c: not c.has("SEGMENT")
                                            and "consecutive" not in c.traits), indirect=True)
async def test_an_unreachable_floor_stops_the_start(
    case: Case, tmp_path: Path, key: str
) -> None:
    """A generator that cannot move its counter refuses a floor above its ids."""
    async with build(case, tmp_path, biggerThan=f'{{"{key}": {2**62}}}') as component:
        assert isinstance(component, Sequencer)
        with pytest.raises(ConfigError, match="biggerThan"):
            await started(component)


@pytest.mark.parametrize("case", cases_where("durable"), indirect=True)
async def test_ids_keep_increasing_across_a_restart(
    case: Case, tmp_path: Path, key: str
) -> None:
    last = 0
    for _ in range(3):
        async with build(case, tmp_path) as component:
            assert isinstance(component, Sequencer)
            capability = await started(component)
            for increment in (WEAK, STRONG, WEAK):
                got = await capability.get_next_id(STORE, key, increment)
                assert got > last
                last = got
            await capability.stop()


@pytest.mark.e2e
@pytest.mark.parametrize("case", load_cases("sequencer", where=lambda c: c.shared),
                         indirect=True)
def test_two_sidecars_share_the_counter(
    case: Case, start_sidecar: StartSidecar, key: str
) -> None:
    stubs = [runtime_pb2_grpc.RuntimeStub(start_sidecar(case).channel()) for _ in range(2)]

    def next_id(n: int, increment: int) -> int:
        reply = stubs[n % 2].GetNextId(runtime_pb2.GetNextIdRequest(
            store_name=STORE, key=key,
            options=runtime_pb2.SequencerOptions(increment=increment)), timeout=15)
        return int(reply.next_id)

    strong = [next_id(n, runtime_pb2.SequencerOptions.STRONG) for n in range(40)]
    assert all(a < b for a, b in itertools.pairwise(strong)), strong
    weak = [next_id(n, runtime_pb2.SequencerOptions.WEAK) for n in range(200)]
    assert len(set(weak) | set(strong)) == len(weak) + len(strong)
    for own in (weak[0::2], weak[1::2]):  # each sidecar's WEAK ids increase
        assert all(a < b for a, b in itertools.pairwise(own))
        assert own[0] > strong[-1]


@pytest.mark.e2e
@pytest.mark.parametrize("case", cases_where("distinct"), indirect=True)
def test_two_sidecars_never_hand_out_the_same_id(
    case: Case, start_sidecar: StartSidecar, key: str
) -> None:
    """Sidecars of one configuration, running together and one after the other (a restart):
    every id is distinct, and each sidecar's own ids increase."""
    def ids_of(stub: Any, count: int) -> list[int]:
        return [int(stub.GetNextId(runtime_pb2.GetNextIdRequest(
            store_name=STORE, key=key, options=runtime_pb2.SequencerOptions(
                increment=runtime_pb2.SequencerOptions.WEAK if n % 2 else
                runtime_pb2.SequencerOptions.STRONG)), timeout=15).next_id)
            for n in range(count)]

    cars = [start_sidecar(case) for _ in range(2)]
    stubs = [runtime_pb2_grpc.RuntimeStub(car.channel()) for car in cars]
    together = [ids_of(stubs[n % 2], 50) for n in range(6)]
    cars[0].stop()
    restarted = runtime_pb2_grpc.RuntimeStub(start_sidecar(case).channel())
    after = ids_of(restarted, 100)
    every = [i for batch in together for i in batch] + after
    assert len(set(every)) == len(every)
    for own in (together[0::2], together[1::2], [after]):
        flat = [i for batch in own for i in batch]
        assert all(a < b for a, b in itertools.pairwise(flat))


@pytest.mark.parametrize("case", load_cases("sequencer", where=lambda c: bool(c.proxy)),
                         indirect=True)
async def test_outage_gives_unavailable_then_recovers(
    case: Case, tmp_path: Path, key: str
) -> None:
    with TcpProxy("127.0.0.1", case.backend_port) as proxy:
        async with build(case, tmp_path, **case.via_proxy(proxy.port)) as component:
            assert isinstance(component, Sequencer)
            sequencer = await started(component)
            before = await sequencer.get_next_id(STORE, key, STRONG)
            proxy.cut()
            began = time.monotonic()
            with pytest.raises(Unavailable):
                await sequencer.get_next_id(STORE, key, STRONG)
            with pytest.raises(Unavailable):
                await component.ping()
            assert time.monotonic() - began < 20, "calls must fail within their timeout"
            proxy.restore()
            after = await once_back(lambda: sequencer.get_next_id(STORE, key, STRONG))
            assert after > before
            await sequencer.stop()
