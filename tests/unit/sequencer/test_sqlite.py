"""The sqlite sequencer: durability across restarts, files, several sidecars on one file."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path

from pylotto.capabilities.sequencer import Increment, SequencerCapability
from pylotto.components.base import ComponentContext
from pylotto.components.sequencer.sqlite import SqliteSequencer, SqliteSequencerSettings
from pylotto.core.metadata import decode
from tests.unit.sequencer.conftest import started


def _store(data_dir: Path, name: str = "db", **metadata: object) -> SqliteSequencer:
    settings = decode(SqliteSequencerSettings, metadata, component=f"sequencer.{name}")
    return SqliteSequencer(name, settings, ComponentContext(app_id="app", data_dir=data_dir))


async def test_restart_never_goes_backwards(tmp_path: Path) -> None:
    handed_out: list[int] = []
    for _ in range(3):
        store = _store(tmp_path, segmentSize=50)
        await store.init()
        seq = await started(store)
        for i in range(30):
            increment = Increment.STRONG if i % 10 == 0 else Increment.WEAK
            handed_out.append(await seq.get_next_id("db", "order", increment))
        await seq.stop()
        await store.close()
    assert all(a < b for a, b in itertools.pairwise(handed_out)), handed_out
    assert (tmp_path / "sequencer-db.db").exists()


async def test_connection_string_and_table(tmp_path: Path) -> None:
    store = _store(tmp_path, connectionString="ids/custom.sqlite", tableName="ids")
    await store.init()
    await store.ping()
    assert await store.next_id("k", {}) == 1
    await store.close()
    assert (tmp_path / "ids" / "custom.sqlite").exists()


async def test_two_sidecars_on_one_file_never_share_an_id(tmp_path: Path) -> None:
    one, two = _store(tmp_path, segmentSize=5), _store(tmp_path, segmentSize=5)
    await one.init()
    await two.init()
    a, b = await started(one), await started(two)

    async def take(seq: SequencerCapability, n: int) -> list[int]:
        return [await seq.get_next_id("db", "k") for _ in range(n)]

    ids_a, ids_b = await asyncio.gather(take(a, 40), take(b, 40))
    assert not set(ids_a) & set(ids_b)
    await a.stop()
    await b.stop()
    await one.close()
    await two.close()


async def test_bigger_than_persists(tmp_path: Path) -> None:
    store = _store(tmp_path, biggerThan='{"k": 1000}')
    await store.init()
    seq = await started(store)
    assert await seq.get_next_id("db", "k", Increment.STRONG) == 1001
    await store.close()
    store = _store(tmp_path, biggerThan='{"k": 10}')
    await store.init()
    seq = await started(store)
    assert await seq.get_next_id("db", "k", Increment.STRONG) == 1002
    await store.close()
