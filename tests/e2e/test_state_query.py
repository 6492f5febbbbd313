"""State query through the real sidecar: pylotto.v1.StateQuery, driven by the SDK."""

from __future__ import annotations

import json
from typing import Any

import grpc
import pytest

from pylotto.client import AsyncClient, Client, ClientError, StateItem
from tests.e2e.sidecar import Sidecar
from tests.support.servers import require

ORDERS = [
    {"id": n, "status": "paid" if n % 3 else "open", "total": n * 10, "customer": {"tier": t}}
    for n, t in zip(range(1, 13), ["gold", "silver", "bronze"] * 4, strict=True)
]


def test_filter_sort_and_page_through_the_sdk(sidecar: Sidecar) -> None:
    with Client(sidecar.grpc_address) as c:
        c.save_bulk_state("sqlite", [StateItem(f"order-{o['id']}", _json(o)) for o in ORDERS])
        c.save_state("sqlite", "not-json", b"\x00\x01")
        query = {"filter": {"AND": [{"EQ": {"status": "paid"}},
                                    {"IN": {"customer.tier": ["gold", "silver"]}}]},
                 "sort": [{"key": "total", "order": "DESC"}], "page": {"limit": 3}}
        first = c.query_state("sqlite", query)
        assert [o["id"] for o in first.json()] == [11, 10, 8]
        assert all(item.etag for item in first.items) and first.token
        query["page"] = {"limit": 3, "token": first.token}
        second = c.query_state("sqlite", query)
        assert [o["id"] for o in second.json()] == [7, 5, 4]
        query["page"] = {"limit": 3, "token": second.token}
        last = c.query_state("sqlite", query)
        assert [o["id"] for o in last.json()] == [2, 1] and last.token == ""
        ranged = c.query_state("sqlite", '{"filter": {"GTE": {"total": 100}}}')
        assert sorted(item.key for item in ranged.items) == ["order-10", "order-11", "order-12"]


async def test_async_client_and_errors(sidecar: Sidecar) -> None:
    async with AsyncClient(sidecar.grpc_address) as c:
        await c.save_state("in-memory", "q1", _json({"n": 1}))
        result = await c.query_state("in-memory", {"filter": {"EQ": {"n": 1}}})
        assert [i.key for i in result.items] == ["q1"]
        with pytest.raises(ClientError) as info:
            await c.query_state("in-memory", {"filter": {"LIKE": {"n": 1}}})
        assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT
        with pytest.raises(ClientError) as info:
            await c.query_state("nope", {})
        assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT


def _json(value: object) -> bytes:
    return json.dumps(value).encode()


def test_a_store_without_query_answers_unimplemented_naming_it(start_sidecar: Any) -> None:
    require("redis")
    car = start_sidecar(components={"state": {"cache": {
        "type": "redis", "metadata": {"redisHost": "127.0.0.1:6379"}}}})
    with Client(car.grpc_address) as c, pytest.raises(ClientError) as info:
        c.query_state("cache", {"filter": {"EQ": {"n": 1}}})
    assert info.value.code == grpc.StatusCode.UNIMPLEMENTED
    assert "state store cache doesn't support query" in info.value.message
