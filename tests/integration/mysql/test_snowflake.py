"""Layotto's snowflake on MariaDB: one worker-id row per start, ids laid out as Layotto's."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from pylotto.components.base import ComponentContext
from pylotto.components.sequencer.snowflake import SnowflakeSequencer, SnowflakeSettings
from pylotto.core.metadata import decode
from tests.integration.mysql.conftest import sql
from tests.support.servers import require


def layotto_metadata(prefix: str) -> dict[str, str]:
    """Keys as Layotto's configs write them (configs/config_snowflake.json's shape)."""
    return {"mysqlHost": "127.0.0.1:3306", "databaseName": "test", "userName": "root",
            "password": "", "tableName": f"{prefix}_workers", "keyTableName": f"{prefix}_keys",
            "startTime": "2026-01-01"}


def sequencer(prefix: str, data_dir: Path) -> SnowflakeSequencer:
    settings = decode(SnowflakeSettings, layotto_metadata(prefix), component="sequencer.sf")
    return SnowflakeSequencer("sf", settings, ComponentContext(
        app_id="app", data_dir=data_dir, logger=logging.getLogger("test.sf")))


async def test_each_start_takes_a_new_worker_id_row(prefix: str, tmp_path: Path) -> None:
    require("mysql")
    try:
        first, second = sequencer(prefix, tmp_path / "a"), sequencer(prefix, tmp_path / "b")
        await first.init()
        await second.init()
        rows = sql(f"SELECT ID, HOST_NAME, PORT, CREATED FROM `{prefix}_workers` ORDER BY ID")
        assert [row[0] for row in rows] == [first.worker_id, second.worker_id]
        assert first.worker_id != second.worker_id
        for _, host, port, created in rows:
            assert host and "-" in port and created is not None
        # Layotto's key table exists with its columns
        columns = [row[0] for row in sql(
            "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = 'test' "
            "AND TABLE_NAME = %s ORDER BY ORDINAL_POSITION", (f"{prefix}_keys",))]
        assert columns == ["SEQUENCER_KEY", "WORKER_ID", "TIMESTAMP"]
        # Layotto's layout: seconds since startTime << 35 | worker << 13 | sequence
        one = await first.next_id("k", {})
        assert (one >> 13) & ((1 << 22) - 1) == first.worker_id
        since = int(time.time()) - int(first.settings.epoch.timestamp())
        assert abs((one >> 35) - since) <= 2
        await first.close()
        await second.close()
        restarted = sequencer(prefix, tmp_path / "a")
        await restarted.init()
        assert restarted.worker_id > second.worker_id
        assert await restarted.next_id("k", {}) > one
        await restarted.close()
    finally:
        for table in ("workers", "keys"):
            sql(f"DROP TABLE IF EXISTS `{prefix}_{table}`")
