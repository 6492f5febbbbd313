"""PostgreSQL's transient states are UNAVAILABLE (a retry succeeds), never INTERNAL (issue 17):
57P01 admin_shutdown (``pg_terminate_backend``, a fast shutdown) on the shared server, and
57P03 cannot_connect_now on a server of the test's own in smart shutdown ("the database system
is shutting down"), both from real servers."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from pylotto.components.base import Component, ComponentContext
from pylotto.components.state.base import Consistency
from pylotto.core.errors import Unavailable
from pylotto.core.metadata import decode
from pylotto.core.registry import resolve
from tests.integration.postgresql.conftest import DSN, Builder
from tests.support.ports import free_port

pytestmark = pytest.mark.timeout(90)


async def test_a_terminated_backend_is_unavailable_then_served(build: Builder) -> None:
    async with build("state", {"timeout": "20s"}) as store:
        client = store.client
        pids: list[int] = []
        started = asyncio.Event()

        async def sleep_on_own_backend(conn: Any) -> None:
            pids.append(await conn.fetchval("SELECT pg_backend_pid()"))
            started.set()
            await conn.execute("SELECT pg_sleep(15)")

        running = asyncio.create_task(client.call(sleep_on_own_backend))
        await started.wait()
        admin = await asyncpg.connect(DSN)
        try:
            assert await admin.fetchval("SELECT pg_terminate_backend($1)", pids[0])
        finally:
            await admin.close()
        with pytest.raises(Unavailable, match="administrator command"):
            await running
        assert await store.get("absent", Consistency.UNSPECIFIED, {}) is None  # served again


def _as_postgres(command: list[str]) -> list[str]:
    """initdb and postgres refuse to run as root: run them as the ``postgres`` user then."""
    if os.geteuid() != 0:
        return command
    runuser = shutil.which("runuser")
    assert runuser, "running as root needs runuser to start a private PostgreSQL"
    return [runuser, "-u", "postgres", "--", *command]


@pytest.fixture
def private_postgres() -> Iterator[tuple[int, Any]]:
    """(port, the postmaster process) of a PostgreSQL of the test's own."""
    initdb, postgres = shutil.which("initdb"), shutil.which("postgres")
    assert initdb and postgres, "PostgreSQL's initdb/postgres are not on PATH"
    folder = Path(tempfile.mkdtemp(prefix="pylotto-pg-"))  # pytest's tmp dirs are root-only
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
    data = folder / "data"
    subprocess.run(_as_postgres([initdb, "-D", str(data), "-U", "postgres", "-A", "trust",
                                 "--no-sync"]), check=True, capture_output=True)
    port = free_port()
    process = subprocess.Popen(_as_postgres([
        postgres, "-D", str(data), "-p", str(port), "-k", str(folder),
        "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"]),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            assert process.poll() is None, "private PostgreSQL did not start"
            assert time.monotonic() < deadline, "private PostgreSQL not listening after 30 s"
            time.sleep(0.1)
    try:
        yield port, process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)  # fast shutdown
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
        shutil.rmtree(folder, ignore_errors=True)


async def test_a_server_shutting_down_is_unavailable(private_postgres: tuple[int, Any],
                                                     tmp_path: Path) -> None:
    port, process = private_postgres
    dsn = f"postgres://postgres@127.0.0.1:{port}/postgres"
    deadline = time.monotonic() + 30
    while True:  # listening comes before accepting sessions ("the database system is starting up")
        try:
            holder = await asyncpg.connect(dsn, timeout=5)  # a smart shutdown waits for it
            break
        except asyncpg.CannotConnectNowError:
            assert time.monotonic() < deadline, "private PostgreSQL still starting after 30 s"
            await asyncio.sleep(0.1)
    try:
        os.kill(process.pid, signal.SIGTERM)  # smart shutdown: no new sessions
        deadline = time.monotonic() + 15
        while True:  # until the server refuses new sessions with 57P03
            try:
                await (await asyncpg.connect(dsn, timeout=5)).close()
            except asyncpg.CannotConnectNowError:
                break
            assert time.monotonic() < deadline, "no 57P03 within 15 s of a smart shutdown"
            await asyncio.sleep(0.1)
        cls = resolve("state", "postgresql")
        settings = decode(cls.Settings, {"connectionString": dsn, "timeout": "5s"},
                          component="state.pg-private")
        store: Component = cls("pg-private", settings, ComponentContext(
            app_id="app", data_dir=tmp_path, logger=logging.getLogger("test.pg")))
        with pytest.raises(Unavailable, match="shutting down"):
            await store.init()
        await store.close()
    finally:
        await holder.close()
