"""The file store contract (components/file/base.py) on every case of cases.yaml: ``local`` on
a folder of the test, ``aws.s3`` and ``minio`` on a real S3-compatible server (moto's standalone
server, tests/support/s3_server.py). Then what only the S3 types have: endpoints chosen by
request metadata, a missing bucket, an outage (Unavailable, then the same client heals), metadata
refused as the config is checked."""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from pylotto.capabilities.file import CHUNK_BYTES
from pylotto.components.base import ComponentContext
from pylotto.components.file.base import FileStore
from pylotto.core.errors import ConfigError, InvalidArgument, NotFound, Unavailable
from pylotto.core.metadata import decode
from pylotto.core.registry import resolve
from tests.support.ports import free_port
from tests.support.s3_server import S3Server
from tests.support.tcp_proxy import TcpProxy

pytestmark = pytest.mark.timeout(120)

BUCKET = "files"
CASES = yaml.safe_load((Path(__file__).parent / "cases.yaml").read_text())["cases"]


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    with S3Server(tmp_path_factory.mktemp("s3") / "moto.log") as server:
        server.make_bucket(BUCKET)
        yield server


def _filled(value: Any, fills: dict[str, str]) -> Any:
    if isinstance(value, str):
        for mark, text in fills.items():
            value = value.replace(mark, text)
        return value
    if isinstance(value, list):
        return [_filled(v, fills) for v in value]
    if isinstance(value, dict):
        return {k: _filled(v, fills) for k, v in value.items()}
    return value


async def _store(kind: str, metadata: dict[str, Any], data_dir: Path,
                 name: str = "store") -> FileStore:
    cls = resolve("file", kind)
    settings = decode(cls.Settings, metadata, component=f"file.{name}")
    store = cls(name, settings, ComponentContext(app_id="conformance", data_dir=data_dir,
                                                 logger=logging.getLogger(f"test.{name}")))
    assert isinstance(store, FileStore)
    await store.init()
    return store


class Subject:
    """A case's store and how it names things."""

    def __init__(self, case: dict[str, Any], store: FileStore) -> None:
        self.case, self.store = case, store
        self.by_bucket = case["naming"] == "bucket"
        self.top = f"{BUCKET}/{uuid.uuid4().hex[:8]}" if self.by_bucket else uuid.uuid4().hex[:8]

    def name(self, *parts: str) -> str:
        return "/".join((self.top, *parts))

    def listed(self, directory: str, leaf: str) -> str:
        """What ListFile of ``directory`` calls its entry ``leaf``."""
        key = f"{directory}/{leaf}".partition("/")[2] if self.by_bucket else leaf
        return key


@pytest.fixture(params=CASES, ids=[c["name"] for c in CASES])
async def subject(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Subject]:
    case: dict[str, Any] = request.param
    fills = {"{root}": str(tmp_path / "root")}
    if case["naming"] == "bucket":
        server: S3Server = request.getfixturevalue("s3")
        fills["{s3}"] = f"127.0.0.1:{server.port}"
    store = await _store(case["type"], _filled(case["metadata"], fills), tmp_path)
    try:
        yield Subject(case, store)
    finally:
        await store.close()


async def _body(*chunks: bytes) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


async def _read(store: FileStore, name: str, chunk_size: int = CHUNK_BYTES) -> list[bytes]:
    return [chunk async for chunk in await store.get(name, {}, chunk_size)]


async def test_put_get_round_trip_in_bounded_chunks(subject: Subject) -> None:
    store, name = subject.store, subject.name("dir", "blob.bin")
    payload = bytes(range(256)) * 1200 + b"tail"  # 307 204 bytes
    await store.put(name, _body(payload[:1000], payload[1000:200_000], payload[200_000:]), {})
    chunks = await _read(store, name)
    assert b"".join(chunks) == payload
    assert all(len(c) <= CHUNK_BYTES for c in chunks) and len(chunks) == 4
    await store.put(name, _body(b"replaced"), {})
    assert b"".join(await _read(store, name)) == b"replaced"


async def test_empty_file(subject: Subject) -> None:
    name = subject.name("empty")
    await subject.store.put(name, _body(), {})
    assert await _read(subject.store, name) == []
    assert (await subject.store.stat(name, {})).size == 0


async def test_missing_file_is_not_found(subject: Subject) -> None:
    name = subject.name("absent.txt")
    with pytest.raises(NotFound):
        await subject.store.get(name, {}, CHUNK_BYTES)
    with pytest.raises(NotFound):
        await subject.store.stat(name, {})


async def test_stat_then_delete(subject: Subject) -> None:
    store, name = subject.store, subject.name("meta.txt")
    await store.put(name, _body(b"12345"), {})
    meta = await store.stat(name, {})
    assert meta.size == 5
    assert datetime.fromisoformat(meta.last_modified).year >= 2024
    if subject.by_bucket:  # Layotto's S3 components answer the entity tag
        assert meta.metadata["ETag"] == [f'"{hashlib.md5(b"12345").hexdigest()}"']
    await store.delete(name, {})
    with pytest.raises(NotFound):
        await store.stat(name, {})


async def test_list_pages_with_marker(subject: Subject) -> None:
    store, directory = subject.store, subject.name("page")
    leaves = [f"f{i:02d}" for i in range(7)]
    for leaf in reversed(leaves):
        await store.put(f"{directory}/{leaf}", _body(leaf.encode()), {})
    expected = [subject.listed(directory, leaf) for leaf in leaves]
    seen: list[str] = []
    marker, pages = "", 0
    while True:
        page = await store.list(directory, 3, marker, {})
        pages += 1
        assert len(page.files) <= 3 and all(f.size == 3 for f in page.files)
        assert all(datetime.fromisoformat(f.last_modified) for f in page.files)
        seen += [f.name for f in page.files]
        assert page.marker == page.files[-1].name
        if not page.is_truncated:
            break
        marker = page.marker
    assert (seen, pages) == (expected, 3)
    whole = await store.list(directory, 0, "", {})
    assert [f.name for f in whole.files] == expected and not whole.is_truncated
    rest = await store.list(directory, 0, expected[4], {})
    assert [f.name for f in rest.files] == expected[5:]


async def test_failed_put_stores_nothing_and_keeps_the_old_file(subject: Subject) -> None:
    store, name = subject.store, subject.name("kept.txt")
    await store.put(name, _body(b"old"), {})

    async def broken() -> AsyncIterator[bytes]:
        yield b"x" * (6 * 1024 * 1024)  # beyond one S3 part: the multipart path
        raise ConnectionResetError("client went away")

    with pytest.raises(ConnectionResetError):
        await store.put(name, broken(), {})
    assert b"".join(await _read(store, name)) == b"old"
    with pytest.raises(ConnectionResetError):
        await store.put(subject.name("never.txt"), broken(), {})
    with pytest.raises(NotFound):
        await store.stat(subject.name("never.txt"), {})


async def test_names_the_store_refuses(subject: Subject) -> None:
    bad = ["nobucket", f"{BUCKET}/"] if subject.by_bucket else ["../outside", "/abs"]
    for name in bad:
        with pytest.raises(InvalidArgument):
            await subject.store.stat(name, {})
        with pytest.raises(InvalidArgument):
            await subject.store.put(name, _body(b"x"), {})


# ---- the S3 types only ------------------------------------------------------------------


def _keys(s3: S3Server, **extra: Any) -> dict[str, Any]:
    return {"endpoint": s3.endpoint, "accessKeyID": "testing", "accessKeySecret": "testing",
            **extra}


async def test_several_endpoints_chosen_by_request_metadata(s3: S3Server,
                                                            tmp_path: Path) -> None:
    down = f"127.0.0.1:{free_port()}"
    store = await _store("minio", {"endpoints": [
        _keys(s3, endpoint=f"127.0.0.1:{s3.port}"),
        _keys(s3, endpoint=down)]}, tmp_path)
    try:
        name = f"{BUCKET}/chosen.txt"
        with pytest.raises(InvalidArgument, match="metadata 'endpoint' must name one of"):
            await store.put(name, _body(b"x"), {})
        await store.put(name, _body(b"here"), {"endpoint": f"127.0.0.1:{s3.port}"})
        assert (await store.stat(name, {"endpoint": f"127.0.0.1:{s3.port}"})).size == 4
        with pytest.raises(Unavailable):
            await store.stat(name, {"endpoint": down})
        with pytest.raises(InvalidArgument, match="no endpoint 'elsewhere:1'"):
            await store.stat(name, {"endpoint": "elsewhere:1"})
    finally:
        await store.close()


async def test_missing_bucket_is_not_found(s3: S3Server, tmp_path: Path) -> None:
    store = await _store("aws.s3", _keys(s3), tmp_path)
    try:
        with pytest.raises(NotFound):
            await store.put("no-such-bucket/x", _body(b"x"), {})
        with pytest.raises(NotFound):
            await store.list("no-such-bucket", 0, "", {})
    finally:
        await store.close()


async def test_whole_bucket_listed_recursively(s3: S3Server, tmp_path: Path) -> None:
    s3.make_bucket("flat")
    store = await _store("aws.s3", _keys(s3), tmp_path)
    try:
        for key in ("b/c.txt", "a.txt", "b/d/e.txt"):
            await store.put(f"flat/{key}", _body(b"1"), {})
        listed = await store.list("flat", 0, "", {})
        assert [f.name for f in listed.files] == ["a.txt", "b/c.txt", "b/d/e.txt"]
        assert [f.name for f in (await store.list("flat/b/", 0, "", {})).files] == [
            "b/c.txt", "b/d/e.txt"]
        await store.delete("flat/never-there", {})  # S3 deletes a missing key quietly
    finally:
        await store.close()


async def test_outage_is_unavailable_then_heals(s3: S3Server, tmp_path: Path) -> None:
    with TcpProxy("127.0.0.1", s3.port) as proxy:
        store = await _store("minio", _keys(s3, endpoint=f"127.0.0.1:{proxy.port}"), tmp_path)
        try:
            name = f"{BUCKET}/through-the-proxy.txt"
            await store.put(name, _body(b"before"), {})
            proxy.cut()
            with pytest.raises(Unavailable):
                await store.stat(name, {})
            with pytest.raises(Unavailable):
                await store.put(name, _body(b"during"), {})
            proxy.restore()
            assert b"".join(await _read(store, name)) == b"before"  # the same client, healed
        finally:
            await store.close()


@pytest.mark.parametrize(("metadata", "message"), [
    ({"endpoint": "127.0.0.1:9000", "accessKeyID": "a"}, "accessKeySecret missing"),
    ({"endpoints": [{"accessKeyID": "a", "accessKeySecret": "b"}]},
     "endpoint 1: endpoint missing"),
    ({"endpoint": "ftp://x", "accessKeyID": "a", "accessKeySecret": "b"}, "not an http"),
    ({"endpoint": "h:1", "endpoints": [{"endpoint": "h:2"}]}, "not both"),
])
def test_metadata_refused_as_the_config_is_checked(metadata: dict[str, Any],
                                                   message: str) -> None:
    with pytest.raises(ConfigError, match=rf"component file\.s: .*{message}"):
        decode(resolve("file", "aws.s3").Settings, metadata, component="file.s")


def test_secrets_of_an_endpoint_list_never_in_a_refusal() -> None:
    with pytest.raises(ConfigError) as refused:
        decode(resolve("file", "minio").Settings,
               {"endpoints": [{"endpoint": "h:1", "accessKeySecret": "s3cr3t"}, "junk"]},
               component="file.s")
    assert "s3cr3t" not in str(refused.value) and "***" in str(refused.value)
