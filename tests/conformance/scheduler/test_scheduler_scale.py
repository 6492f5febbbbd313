# ruff: noqa: F811  (the fixtures imported from test_scheduler.py are the parameters)
"""The scheduler's sharded index over every durable state store (the fixtures of
test_scheduler.py): jobs of the former single-index layout kept and migrated, many jobs spread
over the shards, a change seen through the shard stamps, a shard write whose stamp was lost
seen by the full re-read."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from pylotto.capabilities.scheduler import JobSpec, SchedulerCapability
from pylotto.capabilities.scheduler import service as service_module
from pylotto.capabilities.scheduler.job import new_record
from pylotto.capabilities.scheduler.store import SHARDS, shard_of
from pylotto.capabilities.state import StateItem
from pylotto.components.state.base import Concurrency
from tests.conformance.scheduler.test_scheduler import (  # noqa: F401 (fixtures)
    CountingApp,
    case,
    eventually,
    make,
)

pytestmark = pytest.mark.timeout(90)


async def test_jobs_of_the_former_single_index_are_kept_and_migrated(
        make: Callable[..., object]) -> None:
    writer: SchedulerCapability = await make(None)  # type: ignore[misc]
    store = writer.store()
    soon = new_record(JobSpec("legacy-soon", due_time="1s"))
    later = new_record(JobSpec("legacy-later", schedule="@every 1h"))
    for record in (soon, later):
        assert await store.create(record)
    # the former layout: one index record with every name, no shards
    await store.state.save_state(store.store, [StateItem(
        store.legacy_index_key, json.dumps({"legacy-soon": soon.generation,
                                            "legacy-later": later.generation}).encode())])
    assert sorted(j.name for j in await writer.list()) == ["legacy-later", "legacy-soon"]

    app = CountingApp()
    upgraded: SchedulerCapability = await make(app)  # type: ignore[misc]
    await eventually(lambda: app.got["legacy-soon"] == 1, within=10)
    got = await store.state.get_state(store.store, store.legacy_index_key)
    assert not got.value  # migrated, then deleted
    shards = await store.shards(range(SHARDS))
    assert shards[shard_of("legacy-later")]["legacy-later"] == later.generation
    assert [j.name for j in await upgraded.list()] == ["legacy-later"]
    assert app.got["legacy-soon"] == 1


async def test_many_jobs_over_the_shards_are_listed_and_deleted(
        make: Callable[..., object]) -> None:
    scheduler: SchedulerCapability = await make(None)  # type: ignore[misc]
    store = scheduler.store()
    records = [new_record(JobSpec(f"many-{i}", schedule="@every 1h")) for i in range(600)]
    for start in range(0, len(records), 100):  # etcd takes at most 128 operations a txn
        await store.state.save_state(store.store, [
            StateItem(store.job_key(r.spec.name), r.dumps()) for r in records[start:start + 100]])
    await store.enlist_many({r.spec.name: r.generation for r in records})
    used = {shard_of(r.spec.name) for r in records}
    assert len(used) == SHARDS  # 600 names touch every shard
    listed = await scheduler.list()
    assert sorted(j.name for j in listed) == sorted(r.spec.name for r in records)
    watcher: SchedulerCapability = await make(CountingApp())  # type: ignore[misc]
    await eventually(lambda: len(watcher._known) == 600, within=20)
    await scheduler.delete_prefix("many-1")
    remaining = [r.spec.name for r in records if not r.spec.name.startswith("many-1")]
    assert sorted(j.name for j in await scheduler.list()) == sorted(remaining)
    await eventually(lambda: sorted(watcher._known) == sorted(remaining), within=10)


async def test_a_change_is_seen_through_the_stamps_and_a_lost_stamp_by_the_full_read(
        make: Callable[..., object], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(service_module, "FULL_READ_SECONDS", 3.0)
    scheduler: SchedulerCapability = await make(None)  # type: ignore[misc]
    app = CountingApp()
    watcher: SchedulerCapability = await make(app)  # type: ignore[misc]
    await scheduler.schedule(JobSpec("stamped", due_time="1s"), overwrite=False)
    await eventually(lambda: app.got["stamped"] == 1, within=10)

    # a writer that died between its shard write and the stamp: no stamp changes
    store = scheduler.store()
    record = new_record(JobSpec("unstamped", due_time=(datetime.now(UTC) + timedelta(
        seconds=1)).isoformat()))
    assert await store.create(record)
    key = store.shard_keys[shard_of("unstamped")]
    got = await store.state.get_state(store.store, key)
    names = json.loads(got.value) if got.value else {}
    names["unstamped"] = record.generation
    await store.state.save_state(store.store, [StateItem(
        key, json.dumps(names).encode(), etag=got.etag,
        concurrency=Concurrency.FIRST_WRITE if got.etag is None else Concurrency.UNSPECIFIED)])
    await eventually(lambda: app.got["unstamped"] == 1, within=15)
    assert watcher.delivered == 2
