"""Build PostgreSQL components on private tables and drop those tables afterwards."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from pylotto.components.base import Component, ComponentContext
from pylotto.core.metadata import decode
from pylotto.core.registry import resolve
from tests.support.servers import CONNECTION, require

DSN = CONNECTION["postgresql"]

Builder = Callable[..., AbstractAsyncContextManager[Any]]


async def drop(prefix: str) -> None:
    """Drop every table, sequence and function whose name starts with ``prefix``."""
    import asyncpg

    conn = await asyncpg.connect(DSN)
    try:
        for table in await conn.fetch(
            "SELECT tablename FROM pg_tables WHERE tablename LIKE $1", f"{prefix}%"
        ):
            await conn.execute(f'DROP TABLE IF EXISTS "{table[0]}" CASCADE')
        for seq in await conn.fetch(
            "SELECT sequencename FROM pg_sequences WHERE sequencename LIKE $1", f"{prefix}%"
        ):
            await conn.execute(f'DROP SEQUENCE IF EXISTS "{seq[0]}"')
        for fn in await conn.fetch("SELECT proname FROM pg_proc WHERE proname LIKE $1",
                                   f"{prefix}%"):
            await conn.execute(f'DROP FUNCTION IF EXISTS "{fn[0]}"()')
    finally:
        await conn.close()


@pytest.fixture
def prefix() -> str:
    return f"pgu{uuid.uuid4().hex[:8]}"


@pytest.fixture
async def build(prefix: str, tmp_path: Path) -> AsyncIterator[Builder]:
    """``async with build("state", {...metadata}) as component`` (tables named after prefix)."""
    require("postgresql")

    @asynccontextmanager
    async def make(capability: str, metadata: dict[str, Any]) -> AsyncIterator[Any]:
        cls = resolve(capability, "postgresql")
        meta = {"connectionString": DSN, "tableName": f"{prefix}_{capability}", **metadata}
        settings = decode(cls.Settings, meta, component=f"{capability}.pg")
        component: Component = cls("pg", settings, ComponentContext(
            app_id="app", data_dir=tmp_path, logger=logging.getLogger("test.pg")))
        await component.init()
        try:
            yield component
        finally:
            await component.close()

    yield make
    await drop(prefix)
