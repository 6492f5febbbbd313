"""MySQL/MariaDB's transient states are UNAVAILABLE (a retry succeeds), never INTERNAL (issue
17): a statement stopped by ``KILL QUERY`` (1317, what a shutdown does to running statements)
and a connection killed under a running statement (MariaDB 1927 / 2013), on the real server.
The rest of the table (1053 server shutdown, read-only after a failover) is pinned against the
error objects PyMySQL builds from those codes."""

from __future__ import annotations

import asyncio
from typing import Any

import pymysql
import pytest

from pylotto.components._backends.mysql_client import ERRORS
from pylotto.components.state.base import Consistency
from pylotto.core.errors import Internal, Unavailable
from tests.integration.mysql.conftest import Builder, sql

pytestmark = pytest.mark.timeout(60)


@pytest.mark.parametrize("kill", ["KILL QUERY", "KILL CONNECTION"])
async def test_a_killed_statement_is_unavailable_then_served(build: Builder, kill: str) -> None:
    async with build("state", {"timeout": "20s"}) as store:
        ids: list[int] = []
        started = asyncio.Event()

        async def sleep_on_own_connection(cursor: Any) -> None:
            await cursor.execute("SELECT CONNECTION_ID()")
            ids.append((await cursor.fetchone())[0])
            started.set()
            await cursor.execute("SELECT SLEEP(15)")
            await cursor.fetchall()

        running = asyncio.create_task(store.client.call(sleep_on_own_connection, retry=False))
        await started.wait()
        await asyncio.sleep(0.2)  # the SLEEP is running
        await asyncio.to_thread(sql, f"{kill} %s", (ids[0],))
        with pytest.raises(Unavailable, match="interrupted" if kill == "KILL QUERY" else None):
            await running
        assert await store.get("absent", Consistency.UNSPECIFIED, {}) is None  # served again


@pytest.mark.parametrize(("code", "message", "expected"), [
    (1053, "Server shutdown in progress", Unavailable),
    (1317, "Query execution was interrupted", Unavailable),
    (1927, "Connection was killed", Unavailable),
    (1836, "Running in read-only mode", Unavailable),
    (1290, "The MariaDB server is running with the --read-only option so it cannot execute "
           "this statement", Unavailable),
    (1290, "The MySQL server is running with the --secure-file-priv option so it cannot "
           "execute this statement", Internal),
    (1062, "Duplicate entry 'k' for key 'PRIMARY'", Internal),
])
def test_the_error_table(code: int, message: str, expected: type[Exception]) -> None:
    cls = pymysql.err.error_map.get(code, pymysql.err.OperationalError)
    assert type(ERRORS.map(cls(code, message), "state store s")) is expected
