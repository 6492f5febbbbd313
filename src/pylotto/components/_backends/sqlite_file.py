"""What every SQLite-backed component shares: where the file is, how it is opened, which
errors are worth a retry."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import sqlite3
from collections.abc import AsyncIterator
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
        await _switch_to_wal(db)
        await db.execute(f"PRAGMA synchronous = {synchronous}")
        for statement in schema:
            await db.execute(statement)
    except sqlite3.Error as exc:
        if db is not None:
            await db.close()
        raise Unavailable(f"{what}: cannot open {target}: {exc}") from exc
    return db


WAL_RETRY_SECONDS = 0.02


def is_busy(exc: BaseException) -> bool:
    """Whether ``exc`` is a lock another connection holds (worth a retry)."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    return any(name.startswith(code) for code in BUSY_ERRORS)


async def _switch_to_wal(db: aiosqlite.Connection) -> None:
    """``journal_mode = WAL``, retried while another connection holds the file: SQLite fails
    that switch at once with "database is locked", without its busy timeout, when several
    processes (``--workers``, sidecars sharing a file) open a new file at the same moment."""
    deadline = asyncio.get_running_loop().time() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            await db.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if not is_busy(exc) or asyncio.get_running_loop().time() >= deadline:
                raise
            await asyncio.sleep(WAL_RETRY_SECONDS)


def db_error(exc: sqlite3.Error | ValueError, what: str) -> PylottoError:
    """A busy, locked or closed database is worth a retry; anything else is Internal."""
    if is_busy(exc):
        return Unavailable(f"{what}: the database file stayed locked by another writer for "
                           f"{BUSY_TIMEOUT_MS / 1000:g} s (sqlite: {exc})")
    if isinstance(exc, sqlite3.OperationalError | ValueError):
        return Unavailable(f"{what}: sqlite: {exc}")
    return Internal(f"{what}: sqlite: {exc}")


class WriterTurns:
    """One writer at a time over a database file, across processes, handed over by the kernel.

    SQLite alone makes a writer that finds the file locked sleep and try again (1, 2, 5 ... 100
    ms apart, up to the busy timeout): under steady writes from two processes (``--workers``)
    the one that lost keeps sleeping while the other keeps winning, and its calls wait for
    seconds. So every write transaction first takes an ``flock`` on a file beside the database
    (``<file>.writer``): a waiting process is woken the moment the writer lets go. It only
    orders the writers: SQLite's own locking still guards the data (a process that does not
    take the turn is served by the busy timeout as before). In-memory and URI databases have
    no turns. Waiting longer than the busy timeout answers Unavailable.
    """

    def __init__(self, target: str, uri: bool, what: str) -> None:
        self._path = None if uri or target == ":memory:" else target + ".writer"
        self._what = what
        self._fd: int | None = None
        self._local = asyncio.Lock()  # one turn per process at a time: the lock is per file
        self._pending: asyncio.Future[None] | None = None
        """A blocking ``flock`` still running in a thread after its caller gave up: the
        next turn waits for it (it will own the lock) instead of taking another."""

    def open(self) -> None:
        if self._path is not None:
            with contextlib.suppress(OSError):  # no turns: SQLite's busy timeout alone
                self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)

    def close(self) -> None:
        if self._fd is not None and self._pending is None:
            os.close(self._fd)  # releases the lock if held
        self._fd = None

    @contextlib.asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        """Hold the writer's turn for the body (a write transaction)."""
        fd = self._fd
        if fd is None:
            yield
            return
        async with self._local:
            await self._acquire(fd)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)

    async def _acquire(self, fd: int) -> None:
        timeout = BUSY_TIMEOUT_MS / 1000
        busy = Unavailable(f"{self._what}: the database file stayed locked by another writer "
                           f"for {timeout:g} s")
        if self._pending is not None:  # an abandoned wait: it ends (and lets go) first
            try:
                async with asyncio.timeout(timeout):
                    await asyncio.shield(self._pending)
            except TimeoutError:
                raise busy from None
            except OSError:
                pass
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            pass
        waiting = asyncio.ensure_future(asyncio.to_thread(fcntl.flock, fd, fcntl.LOCK_EX))
        try:
            async with asyncio.timeout(timeout):
                await asyncio.shield(waiting)
        except BaseException as exc:
            if not waiting.done():  # the thread still waits: whoever gets it lets go
                self._pending = waiting
                waiting.add_done_callback(self._let_go)
            elif not waiting.cancelled() and waiting.exception() is None:
                fcntl.flock(fd, fcntl.LOCK_UN)  # got it as the caller gave up
            if isinstance(exc, TimeoutError):
                raise busy from None
            if isinstance(exc, OSError):
                raise Unavailable(f"{self._what}: cannot take the writer's turn: {exc}") from exc
            raise

    def _let_go(self, waiting: asyncio.Future[None]) -> None:
        self._pending = None
        if self._fd is not None and not waiting.cancelled() and waiting.exception() is None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
