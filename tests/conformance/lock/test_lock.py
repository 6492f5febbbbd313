"""The lock conformance suite: every test runs against every case of cases.yaml."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from pylotto.capabilities.base import ComponentSet, RuntimeContext
from pylotto.capabilities.lock import LockCapability
from pylotto.components.lock.base import LockStatus, LockStore
from pylotto.config.model import AppConfig
from pylotto.core.errors import Unavailable
from pylotto.proto.layotto import runtime_pb2, runtime_pb2_grpc
from tests.conformance.cases import (
    RUN_PREFIX,
    Case,
    assert_declares_exactly,
    build,
    load_cases,
    once_back,
)
from tests.conformance.conftest import STORE, StartSidecar
from tests.support.tcp_proxy import TcpProxy

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(params=load_cases("lock"))
def case(request: pytest.FixtureRequest) -> Case:
    chosen: Case = request.param
    return chosen


def capability_over(store: LockStore) -> LockCapability:
    return LockCapability(ComponentSet("lock store", {STORE: store}),
                          RuntimeContext(AppConfig(app_id="conformance"), Path("/nonexistent")))


@pytest.fixture
async def locks(case: Case, tmp_path: Path) -> AsyncIterator[LockCapability]:
    async with build(case, tmp_path) as component:
        assert isinstance(component, LockStore)
        yield capability_over(component)


@pytest.fixture
def resource() -> str:
    return f"{RUN_PREFIX}-{uuid.uuid4().hex[:12]}"


async def test_declares_exactly_the_case_features(case: Case, tmp_path: Path) -> None:
    async with build(case, tmp_path) as component:
        assert_declares_exactly(case, component)


async def test_one_owner_at_a_time(locks: LockCapability, resource: str) -> None:
    assert await locks.try_lock(STORE, resource, "alice", 30)
    assert not await locks.try_lock(STORE, resource, "bob", 30)
    assert not await locks.try_lock(STORE, resource, "alice", 30)  # not re-entrant
    assert await locks.unlock(STORE, resource, "bob") is LockStatus.LOCK_BELONG_TO_OTHERS
    assert not await locks.try_lock(STORE, resource, "bob", 30)  # the refused unlock kept it
    assert await locks.unlock(STORE, resource, "alice") is LockStatus.SUCCESS
    assert await locks.unlock(STORE, resource, "alice") is LockStatus.LOCK_UNEXIST
    assert await locks.try_lock(STORE, resource, "bob", 30)
    assert await locks.unlock(STORE, resource, "bob") is LockStatus.SUCCESS


async def test_resources_are_independent(locks: LockCapability, resource: str) -> None:
    assert await locks.try_lock(STORE, f"{resource}-a", "alice", 30)
    assert await locks.try_lock(STORE, f"{resource}-b", "bob", 30)
    assert await locks.unlock(STORE, f"{resource}-a", "alice") is LockStatus.SUCCESS
    assert await locks.unlock(STORE, f"{resource}-b", "bob") is LockStatus.SUCCESS


async def test_concurrent_contenders_exactly_one_owner(
    locks: LockCapability, resource: str
) -> None:
    owners = [f"owner-{n}" for n in range(50)]
    won = await asyncio.gather(*(locks.try_lock(STORE, resource, o, 30) for o in owners))
    assert won.count(True) == 1
    winner = owners[won.index(True)]
    assert await locks.unlock(STORE, resource, winner) is LockStatus.SUCCESS


async def test_expiry_frees_the_lock(locks: LockCapability, resource: str) -> None:
    assert await locks.try_lock(STORE, resource, "alice", 1)
    deadline = time.monotonic() + 10
    while not await locks.try_lock(STORE, resource, "bob", 30):
        assert time.monotonic() < deadline, "an expired lock was never freed"
        await asyncio.sleep(0.2)
    assert await locks.unlock(STORE, resource, "alice") is LockStatus.LOCK_BELONG_TO_OTHERS
    assert await locks.keep_alive(STORE, resource, "alice", 5) is LockStatus.LOCK_BELONG_TO_OTHERS
    assert await locks.unlock(STORE, resource, "bob") is LockStatus.SUCCESS


async def test_keep_alive_extends_the_lease(locks: LockCapability, resource: str) -> None:
    assert await locks.try_lock(STORE, resource, "alice", 2)
    await asyncio.sleep(1)
    assert await locks.keep_alive(STORE, resource, "alice", 6) is LockStatus.SUCCESS
    await asyncio.sleep(2.5)  # past the first lease, within the renewed one
    assert not await locks.try_lock(STORE, resource, "bob", 30)
    assert await locks.keep_alive(STORE, resource, "bob", 6) is LockStatus.LOCK_BELONG_TO_OTHERS
    assert await locks.unlock(STORE, resource, "alice") is LockStatus.SUCCESS
    assert await locks.keep_alive(STORE, resource, "alice", 6) is LockStatus.LOCK_UNEXIST


async def test_keep_alive_does_not_revive_an_expired_lease(
    locks: LockCapability, resource: str
) -> None:
    assert await locks.try_lock(STORE, resource, "alice", 1)
    deadline = time.monotonic() + 10
    while await locks.keep_alive(STORE, resource, "alice", 1) is LockStatus.SUCCESS:
        assert time.monotonic() < deadline
        await asyncio.sleep(2.5)  # let the lease run out (etcd's shortest lease is ~2s)
    assert await locks.try_lock(STORE, resource, "bob", 30)
    assert await locks.unlock(STORE, resource, "bob") is LockStatus.SUCCESS


@pytest.mark.e2e
@pytest.mark.parametrize("case", load_cases("lock", where=lambda c: c.shared), indirect=True)
def test_contenders_in_two_sidecars_exactly_one_owner(
    case: Case, start_sidecar: StartSidecar, resource: str
) -> None:
    stubs = [runtime_pb2_grpc.RuntimeStub(start_sidecar(case).channel()) for _ in range(2)]

    def contend(n: int) -> bool:
        reply = stubs[n % 2].TryLock(runtime_pb2.TryLockRequest(
            store_name=STORE, resource_id=resource, lock_owner=f"owner-{n}", expire=30),
            timeout=15)
        return bool(reply.success)

    with ThreadPoolExecutor(16) as pool:
        won = list(pool.map(contend, range(40)))
    assert won.count(True) == 1
    winner = won.index(True)
    other = stubs[(winner + 1) % 2]
    refused = other.Unlock(runtime_pb2.UnlockRequest(
        store_name=STORE, resource_id=resource, lock_owner=f"owner-{winner + 1}"), timeout=15)
    assert refused.status == runtime_pb2.UnlockResponse.LOCK_BELONG_TO_OTHERS
    released = other.Unlock(runtime_pb2.UnlockRequest(
        store_name=STORE, resource_id=resource, lock_owner=f"owner-{winner}"), timeout=15)
    assert released.status == runtime_pb2.UnlockResponse.SUCCESS


@pytest.mark.parametrize("case", load_cases("lock", where=lambda c: bool(c.proxy)),
                         indirect=True)
async def test_outage_gives_unavailable_then_recovers(
    case: Case, tmp_path: Path, resource: str
) -> None:
    with TcpProxy("127.0.0.1", case.backend_port) as proxy:
        async with build(case, tmp_path, **case.via_proxy(proxy.port)) as component:
            assert isinstance(component, LockStore)
            locks = capability_over(component)
            assert await locks.try_lock(STORE, resource, "alice", 30)
            proxy.cut()
            started = time.monotonic()
            with pytest.raises(Unavailable):
                await locks.try_lock(STORE, f"{resource}-2", "alice", 30)
            with pytest.raises(Unavailable):
                await component.ping()
            assert time.monotonic() - started < 20, "calls must fail within their timeout"
            proxy.restore()
            assert not await once_back(lambda: locks.try_lock(STORE, resource, "bob", 30))
            assert await locks.unlock(STORE, resource, "alice") is LockStatus.SUCCESS
