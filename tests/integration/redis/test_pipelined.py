"""The pipelined client of the state, lock and sequencer stores: many callers share one
connection, each gets its own reply, and a caller that gives up, fails or times out never
shifts the replies of the others."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from pylotto.components._backends.redis_client import RedisSettings
from pylotto.components._backends.redis_pipelined import PipelinedRedisClient
from pylotto.core.errors import Internal, Unavailable
from pylotto.core.metadata import decode
from tests.integration.redis.conftest import KeyMaker
from tests.integration.redis.test_outage import SilentProxy
from tests.support.servers import CONNECTION, require


def settings(**metadata: str) -> RedisSettings:
    return decode(RedisSettings, {"redisHost": CONNECTION["redis"], "timeout": "3s",
                                  **metadata}, component="state.rd")


@pytest.fixture
async def client() -> AsyncIterator[PipelinedRedisClient]:
    require("redis")
    opened = PipelinedRedisClient(settings(), "state store rd")
    await opened.open()
    yield opened
    await opened.close()


async def connections_named(raw: Redis, name: str) -> int:
    listed = await raw.client_list()
    return sum(1 for entry in listed if entry.get("name") == name)


async def test_many_callers_share_one_connection_and_get_their_own_replies(
    client: PipelinedRedisClient, key: KeyMaker, raw: Redis
) -> None:
    await raw.mset({key(f"k{i}"): f"v{i}" for i in range(200)})
    await raw.set(key("string"), "not a list")
    name = f"pipelined-{uuid.uuid4().hex[:8]}"
    await client.execute("CLIENT", "SETNAME", name)

    async def read(i: int) -> object:
        if i % 7 == 0:  # an error reply in the middle of the others
            with pytest.raises(Internal, match="WRONGTYPE"):
                await client.execute("LPUSH", key("string"), "x")
            return "error"
        return await client.execute("GET", key(f"k{i}"))

    replies = await asyncio.gather(*(read(i) for i in range(200)))
    assert replies == ["error" if i % 7 == 0 else f"v{i}".encode() for i in range(200)]
    assert await connections_named(raw, name) == 1


async def test_a_caller_that_gives_up_leaves_the_connection_in_step(
    client: PipelinedRedisClient, key: KeyMaker, raw: Redis
) -> None:
    await raw.set(key("k"), "v")
    slow = asyncio.create_task(client.execute("EVAL", "redis.call('GET', KEYS[1]) "
                                              "local t = redis.call('TIME') "
                                              "while true do local n = redis.call('TIME') "
                                              "if (n[1] - t[1]) * 1000000 + n[2] - t[2] > 100000 "
                                              "then return 'slow' end end", 1, key("k")))
    await asyncio.sleep(0.05)
    behind = asyncio.create_task(client.execute("GET", key("k")))
    await asyncio.sleep(0.01)
    slow.cancel()  # its reply still comes, and is dropped
    assert await behind == b"v"
    with pytest.raises(asyncio.CancelledError):
        await slow
    assert await client.execute("INCR", key("n")) == 1


async def test_no_reply_in_time_fails_every_waiting_call_then_reconnects(
    key: KeyMaker, raw: Redis
) -> None:
    await raw.set(key("k"), "v")
    async with SilentProxy() as silent:
        client = PipelinedRedisClient(settings(redisHost=f"127.0.0.1:{silent.port}",
                                               timeout="1s"), "lock store rd")
        await client.open()
        try:
            silent.freeze()
            started = time.monotonic()
            outcomes = await asyncio.gather(
                *(client.execute("GET", key("k")) for _ in range(5)), return_exceptions=True)
            assert all(isinstance(o, Unavailable) for o in outcomes), outcomes
            assert time.monotonic() - started < 2.5
            silent.thaw()
            assert await client.execute("GET", key("k")) == b"v"  # a new connection
        finally:
            await client.close()


async def test_username_and_password_are_sent_when_connecting(
    key: KeyMaker, raw: Redis
) -> None:
    user, password = f"pylotto-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    await raw.acl_setuser(user, enabled=True, passwords=[f"+{password}"], keys=["*"],
                          commands=["+@all"])
    try:
        client = PipelinedRedisClient(settings(redisUsername=user, redisPassword=password,
                                               redisDB="1"), "state store rd")
        await client.open()
        try:
            await client.execute("SET", key("k"), "in db 1")
            assert await client.execute("ACL", "WHOAMI") == user.encode()
        finally:
            await client.close()
        wrong = PipelinedRedisClient(settings(redisUsername=user, redisPassword="wrong"),
                                     "state store rd")
        with pytest.raises(Internal, match="WRONGPASS"):
            await wrong.open()
        await wrong.close()
    finally:
        await raw.acl_deluser(user)
    db1 = Redis(host="127.0.0.1", port=6379, db=1)
    try:
        assert await db1.get(key("k")) == b"in db 1"
        await db1.delete(key("k"))
    finally:
        await db1.aclose()


async def test_a_closed_client_refuses_calls(client: PipelinedRedisClient) -> None:
    await client.close()
    with pytest.raises(Unavailable, match="state store rd: redis unreachable"):
        await client.execute("PING")
