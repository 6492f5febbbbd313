"""Build MySQL / MariaDB components on private tables and drop those tables afterwards."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import pymysql
import pytest

from pylotto.components.base import Component, ComponentContext
from pylotto.core.metadata import decode
from pylotto.core.registry import resolve
from tests.support.servers import CONNECTION, require

DSN = CONNECTION["mysql"]

Builder = Callable[..., AbstractAsyncContextManager[Any]]


def connect() -> pymysql.connections.Connection[Any]:
    """A plain (blocking) connection to the test database, for checks behind the components'
    backs."""
    return pymysql.connect(host="127.0.0.1", port=3306, user="root", password="", db="test",
                           charset="utf8mb4", autocommit=True)


def sql(statement: str, args: Any = None) -> list[tuple[Any, ...]]:
    """Run one statement on a fresh connection; its rows."""
    conn = connect()
    try:
        with conn.cursor() as cursor:
            cursor.execute(statement, args)
            return list(cursor.fetchall())
    finally:
        conn.close()


def drop(prefix: str) -> None:
    """Drop every table, sequence and database whose name starts with ``prefix``."""
    pattern = prefix.replace("_", "\\_") + "%"
    for schema, name, kind in sql(
        "SELECT TABLE_SCHEMA, TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES "
        "WHERE TABLE_NAME LIKE %s", (pattern,)
    ):
        what = "SEQUENCE" if kind == "SEQUENCE" else "TABLE"
        sql(f"DROP {what} IF EXISTS `{schema}`.`{name}`")
    for (schema,) in sql("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA "
                         "WHERE SCHEMA_NAME LIKE %s", (pattern,)):
        sql(f"DROP DATABASE IF EXISTS `{schema}`")


@pytest.fixture
def prefix() -> str:
    return f"myu{uuid.uuid4().hex[:8]}"


@pytest.fixture
async def build(prefix: str, tmp_path: Path) -> AsyncIterator[Builder]:
    """``async with build("state", {...metadata}) as component`` (tables named after prefix);
    ``build(..., init=False)`` hands the component over before ``init()`` (the caller inits)."""
    require("mysql")

    @asynccontextmanager
    async def make(capability: str, metadata: dict[str, Any], *,
                   init: bool = True) -> AsyncIterator[Any]:
        cls = resolve(capability, "mysql")
        meta = {"connectionString": DSN, "tableName": f"{prefix}_{capability}", **metadata}
        settings = decode(cls.Settings, meta, component=f"{capability}.my")
        component: Component = cls("my", settings, ComponentContext(
            app_id="app", data_dir=tmp_path, logger=logging.getLogger("test.my")))
        if init:
            await component.init()
        try:
            yield component
        finally:
            await component.close()

    yield make
    drop(prefix)
