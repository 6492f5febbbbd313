"""The local file store under a symlink race: a thread keeps swapping an entry of the root
between something inside and a link to something outside while the store reads, writes and
deletes through it. Not one call may reach the outside file (issue 17: 18-30 % of reads did)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from pylotto.components.base import ComponentContext
from pylotto.components.file.local import LocalFileStore
from pylotto.core.errors import InvalidArgument, NotFound
from pylotto.core.metadata import decode

RACE_SECONDS = 3.0
INSIDE = b"inside"
OUTSIDE = b"OUTSIDE-SECRET"


async def make_store(root: Path, data_dir: Path) -> LocalFileStore:
    settings = decode(LocalFileStore.Settings, {"rootPath": str(root)}, component="file.local")
    store = LocalFileStore("local", settings, ComponentContext(app_id="a", data_dir=data_dir))
    await store.init()
    return store


@contextlib.contextmanager
def flipping(flip: Callable[[bool], None]) -> Iterator[Counter[str]]:
    """Run ``flip(True)`` / ``flip(False)`` alternately in a thread until the block ends."""
    stop = threading.Event()
    flips: Counter[str] = Counter()

    def run() -> None:
        inside = True
        while not stop.is_set():
            try:
                flip(inside)
            except OSError:  # the store's own writes raced this swap: try again
                flips["retries"] += 1
                continue
            flips["flips"] += 1
            inside = not inside

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield flips
    finally:
        stop.set()
        thread.join(5)


async def read(store: LocalFileStore, name: str) -> bytes:
    return b"".join([chunk async for chunk in await store.get(name, {}, 1 << 16)])


async def one_chunk(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def read_while(store: LocalFileStore, name: str, seconds: float) -> Counter[str]:
    seen: Counter[str] = Counter()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            content = await read(store, name)
        except InvalidArgument:
            seen["refused"] += 1
        except NotFound:
            seen["absent"] += 1
        else:
            seen["inside" if content == INSIDE else "outside" if OUTSIDE in content
                 else "other"] += 1
    return seen


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[tuple[LocalFileStore, Path, Path]]:
    root, outside = tmp_path / "root", tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(OUTSIDE)
    store = await make_store(root, tmp_path / "data")
    yield store, store.root_real, outside
    await store.close()


@pytest.mark.timeout(60)
async def test_a_file_swapped_for_a_link_out_is_never_read(
    setup: tuple[LocalFileStore, Path, Path],
) -> None:
    store, root, outside = setup
    race = root / "race"
    race.write_bytes(INSIDE)

    def flip(inside: bool) -> None:  # each swap is one atomic rename over <root>/race
        staged = root / "race.staged"
        if inside:
            staged.write_bytes(INSIDE)
        else:
            staged.symlink_to(outside / "secret")
        os.replace(staged, race)

    with flipping(flip) as flips:
        seen = await read_while(store, "race", RACE_SECONDS)
    print(f"file race: {flips['flips']} flips, reads {dict(seen)}")
    assert seen["outside"] == 0 and seen["other"] == 0
    assert seen["inside"] > 0 and seen["refused"] > 0, seen  # both states were hit
    assert flips["flips"] > 100


@pytest.mark.timeout(60)
async def test_a_directory_swapped_for_a_link_out_is_never_entered(
    setup: tuple[LocalFileStore, Path, Path],
) -> None:
    """``<root>/dir`` is a real directory one moment and a link to the outside directory the
    next, while GetFile reads ``dir/secret``, PutFile writes ``dir/new-N`` and DelFile deletes
    ``dir/victim`` (a file only the outside directory has)."""
    store, root, outside = setup
    (outside / "victim").write_bytes(b"keep me")
    real = root / "real"
    real.mkdir()
    (real / "secret").write_bytes(INSIDE)
    link = root / "dir"

    def flip(inside: bool) -> None:
        if inside:
            if link.is_symlink():
                link.unlink()
            elif link.is_dir():  # a PutFile made it while there was no entry: not ours
                shutil.rmtree(link)
            os.rename(real, link)
        else:
            if not real.exists():
                os.rename(link, real)
            elif link.is_dir() and not link.is_symlink():  # made by a PutFile, as above
                shutil.rmtree(link)
            link.symlink_to(outside, target_is_directory=True)

    async def write_and_delete(seconds: float) -> Counter[str]:
        done: Counter[str] = Counter()
        deadline = time.monotonic() + seconds
        n = 0
        while time.monotonic() < deadline:
            n += 1
            calls = (("put", store.put(f"dir/new-{n}", one_chunk(b"x"), {})),
                     ("delete", store.delete("dir/victim", {})))
            for verb, call in calls:
                try:
                    await call
                    done[f"{verb} ok"] += 1
                except (InvalidArgument, NotFound):
                    done[f"{verb} refused"] += 1
        return done

    with flipping(flip) as flips:
        seen, done = await asyncio.gather(read_while(store, "dir/secret", RACE_SECONDS),
                                          write_and_delete(RACE_SECONDS))
    print(f"directory race: {flips['flips']} flips, reads {dict(seen)}, writes {dict(done)}")
    assert seen["outside"] == 0 and seen["other"] == 0
    assert seen["inside"] > 0 and seen["refused"] > 0, seen
    assert done["put ok"] > 0 and done["put refused"] > 0, done
    assert sorted(p.name for p in outside.iterdir()) == ["secret", "victim"]
    assert (outside / "victim").read_bytes() == b"keep me"
    assert (outside / "secret").read_bytes() == OUTSIDE


async def test_a_root_replaced_under_the_store_is_unavailable(
    setup: tuple[LocalFileStore, Path, Path],
) -> None:
    store, root, _ = setup
    await store.ping()
    root.rename(root.with_name("moved"))
    root.mkdir()  # another directory at the same path: not the one the store holds
    with pytest.raises(Exception, match="is gone"):
        await store.ping()
