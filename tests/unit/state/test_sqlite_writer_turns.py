"""WriterTurns: writers of one SQLite file, in any process, take turns handed over by flock.

Two WriterTurns on one file stand for two processes (each has its own open file, and flock
locks conflict between open files even in one process)."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest

from pylotto.components._backends import sqlite_file
from pylotto.components._backends.sqlite_file import WriterTurns
from pylotto.core.errors import Unavailable


@pytest.fixture
def turns(tmp_path: Path) -> list[WriterTurns]:
    made = [WriterTurns(str(tmp_path / "db.sqlite"), False, f"store {n}") for n in range(3)]
    for one in made:
        one.open()
    return made


async def test_a_waiting_writer_gets_the_turn_when_the_other_lets_go(
        turns: list[WriterTurns]) -> None:
    first, second, _ = turns
    order: list[str] = []

    async def later() -> None:
        async with second.turn():
            order.append("second")

    async with first.turn():
        waiting = asyncio.create_task(later())
        await asyncio.sleep(0.1)
        assert order == []  # not while the first holds it
        order.append("first")
    began = time.monotonic()
    await waiting
    assert order == ["first", "second"]
    assert time.monotonic() - began < 0.5  # woken at once, not after a sleep


async def test_past_the_busy_timeout_a_writer_gives_up_and_leaves_no_lock_behind(
        turns: list[WriterTurns], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqlite_file, "BUSY_TIMEOUT_MS", 200)
    first, second, third = turns
    async with first.turn():
        with pytest.raises(Unavailable, match=r"stayed locked by another writer for 0\.2 s"):
            async with second.turn():
                pytest.fail("the turn was given while another writer held it")
    await asyncio.sleep(0.1)  # the given-up wait got the lock as the first let go: released
    async with asyncio.timeout(1):
        async with third.turn():
            pass
    async with asyncio.timeout(1):
        async with second.turn():  # the one that gave up takes turns again
            pass


async def test_in_memory_and_uri_databases_have_no_turns(tmp_path: Path) -> None:
    for one in (WriterTurns(":memory:", False, "m"),
                WriterTurns(f"file:{tmp_path}/x.db", True, "u")):
        one.open()
        async with one.turn(), one.turn():  # nothing is locked: no wait even nested
            pass
        one.close()
    assert not os.listdir(tmp_path)
