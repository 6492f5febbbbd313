"""Several connections opening one new SQLite file at the same moment all succeed (``--workers``
starting together): the switch to WAL is retried while another holds the file."""

from __future__ import annotations

import asyncio
from pathlib import Path

from pylotto.components._backends.sqlite_file import open_database

CONNECTIONS = 4
ROUNDS = 60
"""Without the retry, several rounds in ten failed here with "database is locked"."""


async def test_connections_opening_a_new_file_together_all_succeed(tmp_path: Path) -> None:
    for round_ in range(ROUNDS):  # aiosqlite: each connection in a thread of its own
        path = str(tmp_path / f"db-{round_}.sqlite")
        opened = await asyncio.gather(*(
            open_database(path, False, what="race", schema=[
                "CREATE TABLE IF NOT EXISTS t (k TEXT PRIMARY KEY, v BLOB)"])
            for _ in range(CONNECTIONS)), return_exceptions=True)
        for db in opened:
            if not isinstance(db, BaseException):
                await db.close()
        assert [db for db in opened if isinstance(db, BaseException)] == [], f"round {round_}"
