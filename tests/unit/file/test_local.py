import asyncio
import os
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import pytest

from pylotto.capabilities.base import ComponentSet, RuntimeContext
from pylotto.capabilities.file import CHUNK_BYTES, FileCapability
from pylotto.components.base import ComponentContext
from pylotto.components.file.base import FileStore
from pylotto.components.file.local import TEMP_PREFIX, LocalFileStore, int_literal
from pylotto.config.model import AppConfig
from pylotto.core.errors import (
    AlreadyExists,
    ComponentNotFound,
    InvalidArgument,
    NotConfigured,
    NotFound,
    Unavailable,
)
from pylotto.core.metadata import decode
from pylotto.core.registry import resolve


async def make_store(tmp_path: Path, **metadata: str) -> LocalFileStore:
    settings = decode(LocalFileStore.Settings, metadata, component="file.local")
    store = LocalFileStore("local", settings,
                           ComponentContext(app_id="a", data_dir=tmp_path / "data"))
    await store.init()
    return store


def capability(tmp_path: Path, stores: dict[str, FileStore]) -> FileCapability:
    return FileCapability(ComponentSet("file store", stores),
                          RuntimeContext(AppConfig(app_id="a"), tmp_path))


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def read_all(store: LocalFileStore, name: str) -> bytes:
    return b"".join([c async for c in await store.get(name, {}, 1024)])


def temp_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.startswith(TEMP_PREFIX)]


@pytest.fixture
async def store(tmp_path: Path) -> LocalFileStore:
    return await make_store(tmp_path, rootPath=str(tmp_path / "root"))


async def test_default_root_is_created_under_data_dir(tmp_path: Path) -> None:
    store = await make_store(tmp_path)
    assert store.root_real == (tmp_path / "data" / "files").resolve()
    assert store.root_real.is_dir()


async def test_put_get_round_trip_in_nested_directories(store: LocalFileStore) -> None:
    await store.put("a/b/c.txt", chunks(b"hello ", b"", b"world"), {})
    assert (store.root_real / "a" / "b" / "c.txt").read_bytes() == b"hello world"
    assert await read_all(store, "a/b/c.txt") == b"hello world"
    await store.put("a/b/c.txt", chunks(b"new"), {})
    assert await read_all(store, "a/b/c.txt") == b"new"


async def test_capability_streams_chunks_of_at_most_100_kib(
    tmp_path: Path, store: LocalFileStore
) -> None:
    cap = capability(tmp_path, {"local": store})
    payload = os.urandom(250 * 1024)
    await cap.put("local", "big.bin", chunks(payload[:7], payload[7:]), {})
    got = [c async for c in await cap.get("local", "big.bin", {})]
    assert [len(c) for c in got] == [CHUNK_BYTES, CHUNK_BYTES, 250 * 1024 - 2 * CHUNK_BYTES]
    assert b"".join(got) == payload


async def test_empty_file_gives_no_chunk(store: LocalFileStore) -> None:
    await store.put("empty", chunks(), {})
    assert [c async for c in await store.get("empty", {}, 10)] == []


@pytest.mark.parametrize(
    "name", ["../outside", "/etc/passwd", "a/../../outside", "a/../b", "..", "x\x00y",
             f"dir/{TEMP_PREFIX}x"],
)
async def test_names_escaping_the_root_are_refused(store: LocalFileStore, name: str) -> None:
    with pytest.raises(InvalidArgument):
        await store.put(name, chunks(b"x"), {})
    with pytest.raises(InvalidArgument):
        await store.get(name, {}, 10)
    with pytest.raises(InvalidArgument):
        await store.stat(name, {})
    with pytest.raises(InvalidArgument):
        await store.delete(name, {})
    with pytest.raises(InvalidArgument):
        await store.list(name, 0, "", {})


async def test_no_symlink_is_followed(tmp_path: Path, store: LocalFileStore) -> None:
    """A link in any component is refused (even one pointing inside the root), by every verb;
    ListFile and GetFileMeta report a link itself, never its target; PutFile replaces a link by
    a file and DelFile removes the link, the target untouched."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("s" * 1000)
    await store.put("real/file", chunks(b"data"), {})
    (store.root_real / "link-dir").symlink_to(outside)
    (store.root_real / "link-file").symlink_to(outside / "secret")
    (store.root_real / "alias").symlink_to(store.root_real / "real")
    refused = "is a symbolic link"
    for name in ("link-dir/secret", "link-file", "link-dir/new", "alias/file", "alias/new"):
        with pytest.raises(InvalidArgument, match=refused):
            await store.get(name, {}, 10)
    for name in ("link-dir/secret", "link-dir/new", "alias/new"):
        with pytest.raises(InvalidArgument, match=refused):
            await store.put(name, chunks(b"x"), {})
        with pytest.raises(InvalidArgument, match=refused):
            await store.delete(name, {})
        with pytest.raises(InvalidArgument, match=refused):
            await store.stat(name, {})
    for name in ("link-dir", "alias", "link-dir/sub"):
        with pytest.raises(InvalidArgument, match=refused):
            await store.list(name, 0, "", {})
    with pytest.raises(InvalidArgument, match=refused):
        await store.put("link-file", chunks(b"more"), {"FileFlag": str(os.O_APPEND | os.O_CREAT)})

    listed = {f.name: f for f in (await store.list("", 0, "", {})).files}
    assert listed["link-dir"].metadata == {"IsDir": "false"}  # the link, not its target dir
    assert listed["link-file"].size == len(str(outside / "secret"))  # not the target's 1000
    meta = await store.stat("link-file", {})
    assert meta.size == len(str(outside / "secret")) and meta.metadata["IsDir"] == ["false"]

    await store.delete("link-dir", {})
    await store.put("link-file", chunks(b"mine"), {})
    assert not (store.root_real / "link-file").is_symlink()
    assert await read_all(store, "link-file") == b"mine"
    assert (outside / "secret").read_text() == "s" * 1000
    assert sorted(p.name for p in outside.iterdir()) == ["secret"]
    assert await read_all(store, "real/file") == b"data"


async def test_special_files_are_refused(store: LocalFileStore) -> None:
    os.mkfifo(store.root_real / "fifo")  # opening it for reading must not wait for a writer
    with pytest.raises(InvalidArgument, match="not a regular file"):
        await asyncio.wait_for(store.get("fifo", {}, 10), 5)


async def test_a_closed_store_is_unavailable(tmp_path: Path) -> None:
    store = await make_store(tmp_path, rootPath=str(tmp_path / "root"))
    await store.put("f", chunks(b"x"), {})
    await store.close()
    with pytest.raises(Unavailable):
        await store.get("f", {}, 10)
    with pytest.raises(Unavailable):
        await store.ping()


async def test_missing_files_are_not_found(store: LocalFileStore) -> None:
    with pytest.raises(NotFound, match="'nope' in file store local not found"):
        await store.get("nope", {}, 10)
    with pytest.raises(NotFound):
        await store.stat("nope", {})
    with pytest.raises(NotFound):
        await store.delete("nope", {})
    with pytest.raises(NotFound):
        await store.list("no-dir", 0, "", {})


async def test_directories_are_not_files(store: LocalFileStore) -> None:
    await store.put("d/f", chunks(b"x"), {})
    with pytest.raises(InvalidArgument, match="is a directory"):
        await store.get("d", {}, 10)
    with pytest.raises(InvalidArgument, match="is a directory"):
        await store.put("d", chunks(b"x"), {})
    with pytest.raises(InvalidArgument, match="parent is not a directory"):
        await store.put("d/f/g", chunks(b"x"), {})
    with pytest.raises(InvalidArgument):
        await store.delete("d", {})  # not empty
    await store.delete("d/f", {})
    await store.delete("d", {})
    assert not (store.root_real / "d").exists()


async def test_list_pages_in_name_order(store: LocalFileStore) -> None:
    for name in ("f3", "f0", "f4", "f1", "f2"):
        await store.put(f"dir/{name}", chunks(name.encode() * 3), {})
    await store.put("dir/sub/x", chunks(b"x"), {})
    (store.root_real / "dir" / f"{TEMP_PREFIX}leftover").write_bytes(b"partial")

    page = await store.list("dir", 2, "", {})
    assert [f.name for f in page.files] == ["f0", "f1"]
    assert (page.marker, page.is_truncated) == ("f1", True)
    assert page.files[0].size == 6 and page.files[0].metadata == {"IsDir": "false"}
    page = await store.list("dir", 2, page.marker, {})
    assert [f.name for f in page.files] == ["f2", "f3"] and page.is_truncated
    page = await store.list("dir", 2, page.marker, {})
    assert [f.name for f in page.files] == ["f4", "sub"]
    assert (page.marker, page.is_truncated) == ("sub", False)
    assert page.files[1].metadata == {"IsDir": "true"}
    page = await store.list("dir", 2, page.marker, {})
    assert (page.files, page.marker, page.is_truncated) == ([], "", False)

    everything = await store.list("dir", 0, "", {})
    assert [f.name for f in everything.files] == ["f0", "f1", "f2", "f3", "f4", "sub"]
    assert not everything.is_truncated
    assert [f.name for f in (await store.list("", 0, "", {})).files] == ["dir"]


async def test_stat_reports_size_time_mode(store: LocalFileStore) -> None:
    await store.put("m.txt", chunks(b"12345"), {"FileMode": "0640"})
    meta = await store.stat("m.txt", {})
    assert meta.size == 5
    assert datetime.fromisoformat(meta.last_modified).tzinfo is not None
    assert meta.metadata == {"FileMode": ["0640"], "IsDir": ["false"]}
    assert (store.root_real / "m.txt").stat().st_mode & 0o777 == 0o640
    await store.put("n.txt", chunks(b"1"), {"FileMode": "420"})  # decimal, as Go's Itoa writes
    assert (await store.stat("n.txt", {})).metadata["FileMode"] == ["0644"]


async def test_file_flags(store: LocalFileStore) -> None:
    create_excl = str(os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    await store.put("f", chunks(b"one"), {"FileFlag": create_excl})
    with pytest.raises(AlreadyExists):
        await store.put("f", chunks(b"two"), {"FileFlag": create_excl})
    await store.put("f", chunks(b"+two"), {"FileFlag": str(os.O_APPEND | os.O_WRONLY)})
    assert await read_all(store, "f") == b"one+two"
    with pytest.raises(NotFound, match="O_CREAT"):
        await store.put("g", chunks(b"x"), {"FileFlag": str(os.O_WRONLY)})
    await store.put("g", chunks(b"x"), {"FileFlag": str(os.O_CREAT | os.O_RDWR)})
    with pytest.raises(InvalidArgument, match="FileMode='rw' is not an integer"):
        await store.put("h", chunks(b"x"), {"FileMode": "rw"})
    assert temp_files(store.root_real) == []


async def test_failed_put_leaves_nothing_behind(store: LocalFileStore) -> None:
    await store.put("keep", chunks(b"old"), {})

    async def broken() -> AsyncIterator[bytes]:
        yield b"partial data"
        raise ConnectionError("client went away")

    with pytest.raises(ConnectionError):
        await store.put("keep", broken(), {})
    with pytest.raises(ConnectionError):
        await store.put("fresh", broken(), {})
    assert await read_all(store, "keep") == b"old"
    assert not (store.root_real / "fresh").exists()
    assert temp_files(store.root_real) == []


async def test_cancelled_put_leaves_nothing_behind(store: LocalFileStore) -> None:
    started = asyncio.Event()

    async def stalls() -> AsyncIterator[bytes]:
        yield b"first"
        started.set()
        await asyncio.sleep(3600)
        yield b"never"

    task = asyncio.create_task(store.put("slow", stalls(), {}))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not (store.root_real / "slow").exists()
    assert temp_files(store.root_real) == []


async def test_capability_rules(tmp_path: Path, store: LocalFileStore) -> None:
    cap = capability(tmp_path, {"local": store})
    for call in (
        lambda: cap.get("local", "", {}),
        lambda: cap.put("local", "", chunks(b"x"), {}),
        lambda: cap.delete("local", "", {}),
        lambda: cap.stat("local", "", {}),
        lambda: cap.list("local", "", {}, page_size=-1),
    ):
        with pytest.raises(InvalidArgument):
            await call()
    with pytest.raises(InvalidArgument, match="file store name is empty"):
        await cap.stat("", "x", {})
    with pytest.raises(ComponentNotFound, match="file store other is not found"):
        await cap.stat("other", "x", {})
    with pytest.raises(NotConfigured, match="file store is not configured"):
        await capability(tmp_path, {}).stat("local", "x", {})


@pytest.mark.parametrize(
    ("text", "value"), [("0644", 0o644), ("420", 420), ("0o755", 0o755), ("0x1ff", 0o777),
                        ("0", 0)],
)
def test_int_literal(text: str, value: int) -> None:
    assert int_literal(text, "FileMode") == value


def test_both_type_names_resolve() -> None:
    assert resolve("file", "local") is LocalFileStore
    assert resolve("file", "file.local") is LocalFileStore


def test_negative_literals_are_refused() -> None:
    with pytest.raises(InvalidArgument, match="must not be negative"):
        int_literal("-1", "FileFlag")


async def test_ping_reports_a_vanished_root(tmp_path: Path) -> None:
    store = await make_store(tmp_path, rootPath=str(tmp_path / "gone"))
    await store.ping()
    (tmp_path / "gone").rmdir()
    with pytest.raises(Unavailable, match="is gone"):
        await store.ping()
