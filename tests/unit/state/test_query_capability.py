"""query_state through the capability: prefix scoping, feature check, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pylotto.capabilities.state import StateItem
from pylotto.components.base import ComponentContext
from pylotto.components.state.base import Feature, StateSettings
from pylotto.components.state.memory import MemoryStateStore
from pylotto.core.errors import InvalidArgument, Unsupported
from pylotto.core.metadata import decode
from tests.unit.state.support import MakeStore, capability

S = "store"


async def test_query_is_scoped_to_the_app_and_strips_prefixes(make_store: MakeStore) -> None:
    store = await make_store(S, keyPrefix="appid")
    app1, app2 = capability(store, app_id="app1"), capability(store, app_id="app2")
    await app1.save_state(S, [StateItem(f"k{i}", json.dumps({"n": i}).encode()) for i in range(3)])
    await app2.save_state(S, [StateItem("other", json.dumps({"n": 1}).encode())])
    query = {"filter": {"GTE": {"n": 1}}, "sort": [{"key": "n", "order": "DESC"}]}
    assert store.has(Feature.QUERY_API)
    result = await app1.query_state(S, json.dumps(query))
    assert [(i.key, json.loads(i.value)) for i in result.items] == [
        ("k2", {"n": 2}),
        ("k1", {"n": 1}),
    ]
    assert all(i.etag for i in result.items)
    assert result.token == ""
    other = await app2.query_state(S, query)
    assert [i.key for i in other.items] == ["other"]


async def test_bad_query_is_invalid_argument(make_store: MakeStore) -> None:
    state = capability(await make_store(S))
    with pytest.raises(InvalidArgument):
        await state.query_state(S, '{"filter": {"NOPE": {}}}')


class _NoQueryStore(MemoryStateStore):
    features = frozenset({Feature.ETAG})


async def test_store_without_query_api_is_unsupported() -> None:
    store = _NoQueryStore(
        S,
        decode(StateSettings, {}, component="state.store"),
        ComponentContext(app_id="app", data_dir=Path("/nonexistent")),
    )
    with pytest.raises(Unsupported, match=f"state store {S} doesn't support query"):
        await capability(store).query_state(S, {"filter": {"EQ": {"a": 1}}})
