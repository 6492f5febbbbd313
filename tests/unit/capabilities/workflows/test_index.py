"""The sharded instance index (``index.py``): compare-and-set per shard, so two sidecars
writing one shard at once lose no id; ``ListInstanceIDs`` pages across the shards with a
``<shard>:<last id>`` token; purge removes the id."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from pylotto.capabilities.actors import ActorsCapability, ActorState
from pylotto.capabilities.workflows import WorkflowsCapability
from pylotto.capabilities.workflows.index import SHARDS, InstanceIndex, shard_of
from pylotto.components.state.base import Consistency, SetRequest, StateStore
from pylotto.config.model import ActorsConfig
from pylotto.core.errors import InvalidArgument
from tests.unit.capabilities.actors.conftest import APP, STORE, memory_store, state_over


def _index(store: StateStore) -> InstanceIndex:
    return InstanceIndex(ActorState(state_over(store), STORE, APP), APP)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[StateStore]:
    store = await memory_store(tmp_path)
    yield store
    await store.close()


def _ids_in_shard(shard: int, count: int) -> list[str]:
    return list(itertools.islice((f"id{i}" for i in itertools.count()
                                  if shard_of(f"id{i}") == shard), count))


async def test_two_sidecars_writing_one_shard_at_once_lose_no_id(store: StateStore) -> None:
    """Two indexes (two sidecars' worth) over one store add 40 ids of ONE shard at once,
    with a store over a network (others write between a read and the write): the
    compare-and-set keeps every one; removals too. Without the CAS ids are lost."""
    read = store.get

    async def slow_read(*args: Any, **kwargs: Any) -> Any:
        got = await read(*args, **kwargs)
        await asyncio.sleep(0.002)
        return got

    store.get = slow_read  # type: ignore[method-assign]
    indexes = [_index(store), _index(store)]
    ids = _ids_in_shard(7, 40)
    await asyncio.gather(*(indexes[i % 2].add(instance_id) for i, instance_id in enumerate(ids)))
    assert sorted(await indexes[0].all()) == sorted(ids)
    assert await indexes[0].shard(7) == sorted(ids)
    await asyncio.gather(*(indexes[i % 2].remove(instance_id)
                           for i, instance_id in enumerate(ids[:20])))
    assert sorted(await indexes[1].all()) == sorted(ids[20:])


async def test_ids_spread_over_the_shards_and_page_across_them(store: StateStore) -> None:
    index = _index(store)
    ids = [f"wf-{i}" for i in range(300)]
    await asyncio.gather(*(index.add(instance_id) for instance_id in ids))
    await index.add("wf-3")  # twice: listed once
    assert len({shard_of(i) for i in ids}) > SHARDS // 2
    assert sorted(await index.all()) == sorted(ids)
    for size in (1, 7, 64, 299, 300):
        seen: list[str] = []
        token = ""
        pages = 0
        while True:
            page, token = await index.page(token, size)
            pages += 1
            assert len(page) == size or not token
            seen += page
            if not token:
                break
        assert sorted(seen) == sorted(ids), size
        assert len(seen) == len(ids)  # none twice
        assert pages == -(-len(ids) // size)  # no empty last page
    all_at_once, token = await index.page("", 0)
    assert sorted(all_at_once) == sorted(ids) and token == ""


async def test_a_page_resumes_after_its_last_id_when_others_change(store: StateStore) -> None:
    """An id purged before the cursor makes no later id skipped (an offset would)."""
    index = _index(store)
    ids = _ids_in_shard(3, 10)
    for instance_id in ids:
        await index.add(instance_id)
    first, token = await index.page("", 4)
    assert first == sorted(ids)[:4]
    await index.remove(first[0])
    rest: list[str] = []
    while token:
        page, token = await index.page(token, 4)
        rest += page
    assert rest == sorted(ids)[4:]


async def test_a_bad_token_is_refused(store: StateStore) -> None:
    for token in ("12", "x:a", f"{SHARDS}:a", "-1:a"):
        with pytest.raises(InvalidArgument, match="invalid continuation token"):
            await _index(store).page(token, 5)


async def test_purge_removes_the_id_from_its_shard(store: StateStore) -> None:
    actors = ActorsCapability(ActorState(state_over(store), STORE, APP),
                              ActorsConfig(fencing=True), APP)
    await actors.start()
    workflows = WorkflowsCapability(actors, APP)
    await workflows.start()
    try:
        for instance_id in ("keep1", "gone1", "keep2"):
            await workflows.start_instance(instance_id, "wf", None)  # no worker: PENDING
        assert sorted((await workflows.list_ids("", 0))[0]) == ["gone1", "keep1", "keep2"]
        await workflows.purge("gone1", force=True)
        assert sorted((await workflows.list_ids("", 0))[0]) == ["keep1", "keep2"]
        assert "gone1" not in await workflows.index.shard(shard_of("gone1"))
    finally:
        await workflows.stop()
        await actors.stop()


async def test_an_index_in_the_former_single_key_form_is_moved_into_the_shards(
        store: StateStore) -> None:
    index = _index(store)
    old = [f"old-{i}" for i in range(30)]
    await store.multi([SetRequest(key=index.old_key, value=json.dumps(old).encode(),  # type: ignore[attr-defined]
                                  metadata=index.metadata)], index.metadata)
    await index.add("new-1")
    assert await index.migrate() == 30
    assert sorted(await index.all()) == sorted([*old, "new-1"])
    assert await store.get(index.old_key, Consistency.UNSPECIFIED, index.metadata) is None
    assert await index.migrate() == 0  # once
