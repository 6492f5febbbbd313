"""libpq's multi-host connection strings (issue 22): a host nobody listens on listed first,
the real PostgreSQL second — as a URL and as a key=value DSN, with
``target_session_attrs=read-write`` — and every PostgreSQL component (state, lock, sequencer,
configuration with its LISTEN connection, the SQL binding) opens on the live one and works.
A ``target_session_attrs`` no host meets is UNAVAILABLE (asyncpg checks each host)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from pylotto.components.bindings.base import BindingRequest
from pylotto.components.configuration.base import ConfigurationItem, ItemsQuery
from pylotto.components.lock.base import LockStatus
from pylotto.components.state.base import Consistency, SetRequest
from pylotto.core.errors import Unavailable
from tests.integration.postgresql.conftest import Builder
from tests.support.ports import free_port


def _strings() -> list[str]:
    dead = free_port()
    return [
        f"postgresql://postgres@127.0.0.1:{dead},127.0.0.1:5432/test"
        "?target_session_attrs=read-write",
        f"host=127.0.0.1,127.0.0.1 port={dead},5432 user=postgres dbname=test "
        "target_session_attrs=read-write",
    ]


@pytest.mark.parametrize("connection", _strings(), ids=["url", "key-value"])
async def test_a_dead_first_host_is_passed_over(build: Builder, connection: str) -> None:
    metadata = {"connectionString": connection}
    async with build("state", metadata) as state:
        await state.set(SetRequest("k", b"v"))
        got = await state.get("k", Consistency.STRONG, {})
        assert got is not None and got.value == b"v"
    async with build("lock", metadata) as lock:
        assert await lock.try_lock("r", "me", 10)
        assert await lock.unlock("r", "me") is LockStatus.SUCCESS
    async with build("sequencer", metadata) as sequencer:
        first = await sequencer.next_id("ids", {})
        assert await sequencer.next_id("ids", {}) > first
    async with build("configuration", metadata) as config:
        seen: asyncio.Queue[str] = asyncio.Queue()

        def changed(items: Sequence[ConfigurationItem]) -> None:
            for item in items:
                seen.put_nowait(item.content)

        subscription = await config.subscribe(ItemsQuery("app", "g", "l"), changed)
        try:
            await config.set("app", [ConfigurationItem("k", "v1", "g", "l")], {})
            assert await asyncio.wait_for(seen.get(), 10) == "v1"
        finally:
            await subscription.close()
    async with build("bindings", metadata) as binding:
        reply = await binding.invoke(BindingRequest("query", metadata={"sql": "SELECT 41 + 1"}))
        assert reply.data == b"[[42]]"


async def test_no_host_meeting_the_session_attrs_is_unavailable(build: Builder) -> None:
    with pytest.raises(Unavailable, match="postgresql"):
        async with build("state", {"connectionString": "postgresql://postgres@127.0.0.1:5432/"
                                   "test?target_session_attrs=read-only", "timeout": "3s"}):
            pass
