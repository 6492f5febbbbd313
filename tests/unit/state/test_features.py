"""What the capability does with a store that declares no optional feature."""

from __future__ import annotations

from pathlib import Path

import pytest

from pylotto.capabilities.state import StateCapability, StateItem, StateOperation
from pylotto.components.base import ComponentContext
from pylotto.components.state.base import (
    Concurrency,
    Consistency,
    DeleteRequest,
    GetResult,
    SetRequest,
    StateSettings,
    StateStore,
)
from pylotto.core.errors import Unavailable, Unsupported
from pylotto.core.types import Metadata
from tests.unit.state.support import capability


class PlainStore(StateStore):
    """A dict, no etag, no TTL, no transactions; reading key "broken" fails."""

    def __init__(self, name: str) -> None:
        context = ComponentContext("app", Path("/nonexistent"))
        super().__init__(name, StateSettings.model_validate({}), context)
        self.data: dict[str, bytes] = {}
        self.seen: list[SetRequest | DeleteRequest] = []

    async def get(self, key: str, consistency: Consistency, metadata: Metadata) -> GetResult | None:
        if key == "broken":
            raise Unavailable("backend is down for 'broken'")
        return GetResult(self.data[key]) if key in self.data else None

    async def set(self, request: SetRequest) -> None:
        self.seen.append(request)
        self.data[request.key] = request.value

    async def delete(self, request: DeleteRequest) -> None:
        self.seen.append(request)
        self.data.pop(request.key, None)


@pytest.fixture
def plain() -> PlainStore:
    return PlainStore("plain")


@pytest.fixture
def state(plain: PlainStore) -> StateCapability:
    return capability(plain)


async def test_transaction_refused(state: StateCapability, plain: PlainStore) -> None:
    with pytest.raises(Unsupported, match="state store plain doesn't support transaction"):
        await state.execute_state_transaction("plain", [StateOperation("upsert", StateItem("k"))])
    assert plain.data == {}


async def test_etag_ttl_and_first_write_refused(state: StateCapability, plain: PlainStore) -> None:
    with pytest.raises(Unsupported, match="doesn't support etags"):
        await state.save_state("plain", [StateItem("k", b"v", etag="1")])
    with pytest.raises(Unsupported, match="doesn't support etags"):
        await state.delete_state("plain", StateItem("k", etag="1"))
    with pytest.raises(Unsupported, match="doesn't support ttlInSeconds"):
        await state.save_state("plain", [StateItem("k", b"v", metadata={"ttlInSeconds": "5"})])
    with pytest.raises(Unsupported, match="first-write"):
        await state.save_state("plain", [StateItem("k", b"v",
                                                   concurrency=Concurrency.FIRST_WRITE)])
    assert plain.seen == []


async def test_requests_reach_the_store_as_sent(state: StateCapability, plain: PlainStore) -> None:
    await state.save_state("plain", [StateItem("k", b"v", etag="", metadata={"m": "1"},
                                               concurrency=Concurrency.LAST_WRITE,
                                               consistency=Consistency.STRONG)])
    await state.delete_state("plain", StateItem("k", consistency=Consistency.EVENTUAL))
    assert plain.seen == [
        SetRequest("k", b"v", None, Concurrency.LAST_WRITE, Consistency.STRONG, None, {"m": "1"}),
        DeleteRequest("k", None, Concurrency.UNSPECIFIED, Consistency.EVENTUAL, {}),
    ]


async def test_bulk_get_reports_per_key_errors(state: StateCapability, plain: PlainStore) -> None:
    plain.data["ok"] = b"fine"
    items = await state.get_bulk_state("plain", ["ok", "broken", "missing"])
    assert [(i.key, i.value, i.error) for i in items] == [
        ("ok", b"fine", ""), ("broken", b"", "backend is down for 'broken'"),
        ("missing", b"", ""),
    ]


async def test_get_error_keeps_its_class_and_names_the_key(state: StateCapability) -> None:
    with pytest.raises(Unavailable,
                       match="fail to get broken from state store plain: backend is down"):
        await state.get_state("plain", "broken")
