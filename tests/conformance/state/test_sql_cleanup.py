"""The TTL sweeper of the SQL state stores (pylotto.components.state.sql_cleanup): with several
sidecars on one table, one of them sweeps per interval, chosen by the last-cleanup row."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest

from pylotto.components.state.base import Consistency, SetRequest
from tests.conformance.cases import RUN_PREFIX, Case, build, load_cases

pytestmark = pytest.mark.timeout(60)
SQL_TYPES = {"state.sqlite", "state.postgresql", "state.mysql"}


@pytest.fixture(params=load_cases("state", where=lambda c: c.type in SQL_TYPES))
def case(request: pytest.FixtureRequest) -> Case:
    chosen: Case = request.param
    return chosen


@pytest.fixture
async def instances(case: Case, tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    """``await open_two(**metadata)``: two stores ("sidecars") on one fresh table."""
    table = f"{RUN_PREFIX}_sw{uuid.uuid4().hex[:6]}"
    shared = {"tableName": table}
    if case.version == "v2":  # contrib's v2 names its tables by prefix
        shared = {"tablePrefix": f"{table}_", "metadataTableName": f"{table}_meta"}
    if case.type == "state.sqlite":
        shared["connectionString"] = str(tmp_path / "shared.db")
    async with AsyncExitStack() as stack:

        async def open_two(**metadata: Any) -> list[Any]:
            return [await stack.enter_async_context(
                build(case, tmp_path, instance=str(i), **shared, **metadata)) for i in (1, 2)]

        yield open_two


async def test_one_sweep_per_interval_on_start(instances: Callable[..., Any]) -> None:
    one, two = await instances()  # one swept on start; two found the row fresh
    assert await one._sweeper.sweep() is None
    assert await two._sweeper.sweep() is None
    assert await two._claim_sweep(0.0)  # the row is older than nothing
    assert not await one._claim_sweep(3600.0)


async def test_periodic_sweeps_are_shared(instances: Callable[..., Any]) -> None:
    interval = 0.5
    one, two = await instances(cleanupIntervalInSeconds=str(interval))
    sweeps: list[str] = []
    for name, store in (("one", one), ("two", two)):
        delete = store._sweeper._delete

        async def counted(name: str = name, delete: Any = delete) -> int:
            sweeps.append(name)
            deleted: int = await delete()
            return deleted

        store._sweeper._delete = counted
    await one.set(SetRequest("short", b"1", ttl_seconds=1))
    await one.set(SetRequest("long", b"2"))
    await asyncio.sleep(2.6)
    assert await two.get("long", Consistency.UNSPECIFIED, {}) is not None
    assert await one.delete_expired() == 0  # a sweep deleted "short" already
    assert 3 <= len(sweeps) <= 6, sweeps  # every 0.5s: one sidecar, not both
