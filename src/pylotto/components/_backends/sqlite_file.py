"""What every SQLite-backed component shares: where the file is, how it is opened, which
errors are worth a retry."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import aiosqlite

from pylotto.core.errors import Internal, PylottoError, Unavailable

BUSY_TIMEOUT_MS = 5000
"""How long a write waits for another connection (another sidecar, another ``--workers``
process) holding the file's write lock: SQLite retries it in this bound, then the call fails
as Unavailable."""

BUSY_ERRORS = frozenset({"SQLITE_BUSY", "SQLITE_LOCKED"})
"""The primary result codes of a lock held by another connection (extended codes start so)."""

TABLE_NAME = r"^[A-Za-z_][A-Za-z0-9_]{0,62}$"
"""Pattern of a ``tableName`` setting (it is spliced into SQL, so nothing else is allowed)."""

DB_ERRORS = (sqlite3.Error, ValueError)
"""What aiosqlite raises: ValueError for a closed connection."""


def database_target(connection_string: str, default_file: str, data_dir: Path) -> tuple[str, bool]:
    """What to hand ``sqlite3.connect``: (path or URI, is_uri). A relative path is taken under
    ``data_dir``; ``file:`` URIs and ``:memory:`` pass through."""
    if connection_string.startswith("file:"):
        return connection_string, True
    if connection_string == ":memory:":
        return connection_string, False
    path = Path(connection_string).expanduser() if connection_string else Path(default_file)
    if not path.is_absolute():
        path = data_dir / path
    return str(path), False


async def open_database(
    target: str, uri: bool, *, what: str, schema: list[str], synchronous: str = "FULL"
) -> aiosqlite.Connection:
    """Open in autocommit mode with WAL and a busy timeout, then run ``schema``."""
    if not uri and target != ":memory:":
        Path(target).parent.mkdir(parents=True, exist_ok=True)
    db: aiosqlite.Connection | None = None
    try:
        db = await aiosqlite.connect(target, isolation_level=None, uri=uri)
        await db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        await db.execute("PRAGMA journal_mode = WAL")
        await db.execute(f"PRAGMA synchronous = {synchronous}")
        for statement in schema:
            await db.execute(statement)
    except sqlite3.Error as exc:
        if db is not None:
            await db.close()
        raise Unavailable(f"{what}: cannot open {target}: {exc}") from exc
    return db


def db_error(exc: sqlite3.Error | ValueError, what: str) -> PylottoError:
    """A busy, locked or closed database is worth a retry; anything else is Internal."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    if any(name.startswith(busy) for busy in BUSY_ERRORS):
        return Unavailable(f"{what}: the database file stayed locked by another writer for "
                           f"{BUSY_TIMEOUT_MS / 1000:g} s (sqlite: {exc})")
    if isinstance(exc, sqlite3.OperationalError | ValueError):
        return Unavailable(f"{what}: sqlite: {exc}")
    return Internal(f"{what}: sqlite: {exc}")
