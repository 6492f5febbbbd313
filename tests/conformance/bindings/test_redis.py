"""``bindings.redis`` against the real Redis: components-contrib's operations and metadata."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from pylotto.core.errors import Internal, InvalidArgument
from tests.conformance.bindings.support import Bound, bound
from tests.conformance.cases import RUN_PREFIX, Case, load_cases

pytestmark = pytest.mark.timeout(60)

CASE: Case = next(p.values[0] for p in load_cases("bindings") if p.id == "redis")


@pytest.fixture
async def binding(tmp_path: Path) -> AsyncIterator[Bound]:
    async with bound(CASE, tmp_path) as built:
        yield built


@pytest.fixture
async def server() -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis(host="127.0.0.1", port=6379)
    yield client
    await client.aclose()


@pytest.fixture
def key() -> str:
    return f"{RUN_PREFIX}-binding-{uuid.uuid4().hex[:10]}"


async def test_create_get_delete(binding: Bound, server: aioredis.Redis, key: str) -> None:
    created = await binding.invoke("create", b'{"a": 1}', key=key)
    assert (created.data, created.metadata) == (b"", {})
    assert await server.get(key) == b'{"a": 1}'
    assert await server.ttl(key) == -1, "no ttl asked: none set"
    got = await binding.invoke("get", key=key)
    assert (got.data, got.metadata) == (b'{"a": 1}', {})
    assert (await binding.invoke("delete", key=key)).data == b""
    assert await server.exists(key) == 0
    assert (await binding.invoke("get", key=key)).data == b"", "a missing key: no data"
    await binding.invoke("delete", key=key)  # deleting a missing key is no error


async def test_get_with_delete_reads_and_removes(binding: Bound, server: aioredis.Redis,
                                                 key: str) -> None:
    await server.set(key, b"once")
    assert (await binding.invoke("get", key=key, delete="true")).data == b"once"
    assert await server.exists(key) == 0
    await server.set(key, b"kept")
    assert (await binding.invoke("get", key=key, delete="yes")).data == b"kept"
    assert await server.get(key) == b"kept", "only 'true' deletes, as Dapr's"
    await server.delete(key)


async def test_increment(binding: Bound, server: aioredis.Redis, key: str) -> None:
    assert (await binding.invoke("increment", key=key)).data == b""
    await binding.invoke("increment", key=key)
    assert await server.get(key) == b"2"
    await server.set(key, b"text")
    with pytest.raises(Internal, match="not an integer"):
        await binding.invoke("increment", key=key)
    await server.delete(key)


@pytest.mark.parametrize(("metadata", "expected"), [
    ({"ttlInSeconds": "100"}, 100), ({"ttl": "2m"}, 120), ({"TTL": "1h"}, 3600),
    ({"ttlinseconds": "7"}, 7),
])
async def test_ttl_sets_an_expiry(binding: Bound, server: aioredis.Redis, key: str,
                                  metadata: dict[str, str], expected: int) -> None:
    await binding.invoke("create", b"v", key=key, **metadata)
    assert expected - 5 <= await server.ttl(key) <= expected
    await server.delete(key)
    await binding.invoke("increment", key=key, **metadata)
    assert expected - 5 <= await server.ttl(key) <= expected
    await server.delete(key)


@pytest.mark.parametrize("ttl", ["-1s", "0", "500ms"])
async def test_duration_under_a_second_expires_at_once(binding: Bound, server: aioredis.Redis,
                                                       key: str, ttl: str) -> None:
    await binding.invoke("create", b"v", key=key, ttl=ttl)
    assert await server.exists(key) == 0, "EXPIRE 0 (whole seconds of a Go duration), as Dapr's"


@pytest.mark.parametrize(("value", "message"), [
    ("soon", "ttl value must be a valid integer: actual is 'soon'"),
    ("-3", "ttl value must be higher than zero: actual is '-3'"),
])
async def test_bad_ttl_is_refused_before_writing(binding: Bound, server: aioredis.Redis,
                                                 key: str, value: str, message: str) -> None:
    with pytest.raises(InvalidArgument) as refused:
        await binding.invoke("create", b"v", key=key, ttlInSeconds=value)
    assert refused.value.message == message
    assert await server.exists(key) == 0


@pytest.mark.parametrize("operation", ["create", "get", "delete", "increment"])
async def test_key_is_required(binding: Bound, operation: str) -> None:
    with pytest.raises(InvalidArgument) as refused:
        await binding.invoke(operation, b"v")
    assert refused.value.message == "redis binding: missing key in request metadata"
    with pytest.raises(InvalidArgument):
        await binding.invoke(operation, b"v", key="")


async def test_redis_db_is_honoured(tmp_path: Path, key: str) -> None:
    async with bound(CASE, tmp_path, redisDB="3") as other:
        await other.invoke("create", b"in db 3", key=key)
    client = aioredis.Redis(host="127.0.0.1", port=6379, db=3)
    try:
        assert await client.get(key) == b"in db 3"
        await client.delete(key)
    finally:
        await client.aclose()
