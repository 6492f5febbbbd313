"""``bindings.localstorage``: components-contrib's operations and answers, confined to
``rootPath`` by the file store's rule."""

from __future__ import annotations

import base64
import json
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pylotto.core.errors import ConfigError, InvalidArgument, NotFound
from tests.conformance.bindings.support import Bound, bound
from tests.conformance.cases import Case, load_cases

pytestmark = pytest.mark.timeout(60)

CASE: Case = next(p.values[0] for p in load_cases("bindings") if p.id == "localstorage")


@pytest.fixture
async def binding(tmp_path: Path) -> AsyncIterator[Bound]:
    async with bound(CASE, tmp_path) as built:
        yield built


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return (tmp_path / "files").resolve()


async def test_create_get_list_delete(binding: Bound, root: Path) -> None:
    created = await binding.invoke("create", b"hello world", fileName="a/b/c.txt")
    assert created.data == b'{"fileName":"a/b/c.txt"}'
    assert created.metadata == {}
    assert (root / "a/b/c.txt").read_bytes() == b"hello world"
    assert (await binding.invoke("get", fileName="a/b/c.txt")).data == b"hello world"
    await binding.invoke("create", b"zz", fileName="b.txt")
    listed = json.loads((await binding.invoke("list")).data)
    assert listed == [str(root / "a/b/c.txt"), str(root / "b.txt")], "absolute, walk order"
    assert json.loads((await binding.invoke("list", fileName="a")).data) == [
        str(root / "a/b/c.txt")]
    assert (await binding.invoke("delete", fileName="a/b/c.txt")).data == b""
    assert not (root / "a/b/c.txt").exists()
    with pytest.raises(NotFound, match=r"^file not found: .*c\.txt$"):
        await binding.invoke("get", fileName="a/b/c.txt")
    with pytest.raises(NotFound):
        await binding.invoke("delete", fileName="a/b/c.txt")


async def test_list_of_an_empty_folder_is_null(binding: Bound) -> None:
    assert (await binding.invoke("list")).data == b"null"


async def test_create_without_name_picks_a_uuid(binding: Bound, root: Path) -> None:
    created = json.loads((await binding.invoke("create", b"x")).data)
    assert uuid.UUID(created["fileName"])
    assert (root / created["fileName"]).read_bytes() == b"x"


@pytest.mark.parametrize(("data", "stored"), [
    (base64.b64encode(b"\x00\x01binary"), b"\x00\x01binary"),
    (b'"quoted \\"text\\""', b'quoted "text"'),
    (b"not base64!", b"not base64!"),
    (b"abcd", base64.b64decode(b"abcd")),
])
async def test_create_decodes_as_dapr(binding: Bound, root: Path, data: bytes,
                                      stored: bytes) -> None:
    await binding.invoke("create", data, fileName="f")
    assert (root / "f").read_bytes() == stored


async def test_create_overwrites(binding: Bound, root: Path) -> None:
    await binding.invoke("create", b"one two three", fileName="f")
    await binding.invoke("create", b"four!", fileName="f")
    assert (root / "f").read_bytes() == b"four!"


async def test_a_leading_slash_is_below_the_root(binding: Bound, root: Path) -> None:
    created = await binding.invoke("create", b"v", fileName="/etc/x")
    assert created.data == b'{"fileName":"etc/x"}'
    assert (root / "etc/x").read_bytes() == b"v"


@pytest.mark.parametrize("name", ["../escape", "a/../../escape", "a/\x00b"])
async def test_names_outside_the_root_are_refused(binding: Bound, tmp_path: Path,
                                                  name: str) -> None:
    for operation in ("create", "get", "delete", "list"):
        with pytest.raises(InvalidArgument):
            await binding.invoke(operation, b"v", fileName=name)
    assert not (tmp_path / "escape").exists()


async def test_links_are_not_followed(binding: Bound, root: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(b"secret")
    os.symlink(outside, root / "link")
    os.symlink(outside / "secret", root / "file-link")
    with pytest.raises(InvalidArgument, match="symbolic link"):
        await binding.invoke("get", fileName="link/secret")
    with pytest.raises(InvalidArgument, match="symbolic link"):
        await binding.invoke("get", fileName="file-link")
    with pytest.raises(InvalidArgument):
        await binding.invoke("create", b"over", fileName="file-link")
    with pytest.raises(InvalidArgument):
        await binding.invoke("create", b"new", fileName="link/new")
    assert (outside / "secret").read_bytes() == b"secret"
    assert not (outside / "new").exists()
    listed = json.loads((await binding.invoke("list")).data)
    assert listed == [str(root / "file-link"), str(root / "link")], "links listed, not walked"


async def test_get_of_a_folder_is_refused(binding: Bound) -> None:
    await binding.invoke("create", b"v", fileName="d/f")
    with pytest.raises(InvalidArgument, match="directory"):
        await binding.invoke("get", fileName="d")
    with pytest.raises(InvalidArgument, match="not a directory"):
        await binding.invoke("list", fileName="d/f")


@pytest.mark.parametrize(("root_path", "message"), [
    ("/proc/self", "disallowed location"),
    ("/sys", "disallowed location"),
])
async def test_disallowed_roots(tmp_path: Path, root_path: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        async with bound(CASE, tmp_path, rootPath=root_path):
            pass


async def test_root_that_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "plain").write_bytes(b"")
    with pytest.raises(ConfigError, match="represents a file and not a directory"):
        async with bound(CASE, tmp_path, rootPath=str(tmp_path / "plain")):
            pass
