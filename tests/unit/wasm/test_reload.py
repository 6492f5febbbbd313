"""A changed module file is used by the next call; a broken one keeps the previous module."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from tests.unit.wasm.conftest import RuntimeFactory, call
from tests.unit.wasm.wat import ECHO, module

CONSTANT = module("(call $pack (i32.const 0) (i32.const 2))", "v2")


def _touch_later(path: Path) -> None:
    """Make the modification time differ even on coarse file systems."""
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 2_000_000_000))


async def test_changed_file_is_reloaded(wasm_runtime: RuntimeFactory, tmp_path: Path) -> None:
    runtime = await wasm_runtime({"fn": ECHO})
    assert await call(runtime, "fn", b"v1") == b"v1"
    path = tmp_path / "fn.wat"
    path.write_text(CONSTANT)
    _touch_later(path)
    assert await call(runtime, "fn", b"v1") == b"v2"


async def test_broken_file_keeps_the_old_module(wasm_runtime: RuntimeFactory, tmp_path: Path,
                                                caplog: pytest.LogCaptureFixture) -> None:
    runtime = await wasm_runtime({"fn": ECHO})
    path = tmp_path / "fn.wat"
    path.write_text("(module (func $broken")
    _touch_later(path)
    with caplog.at_level(logging.ERROR, logger="pylotto.wasm"):
        assert await call(runtime, "fn", b"old") == b"old"
    assert any("does not load" in r.getMessage() and "keeping the previous one"
               in r.getMessage() for r in caplog.records)
    path.write_text(CONSTANT)  # fixed again: picked up
    _touch_later(path)
    _touch_later(path)
    assert await call(runtime, "fn", b"old") == b"v2"


async def test_broken_file_at_start_is_a_config_error(tmp_path: Path) -> None:
    from pylotto.core.errors import ConfigError
    from pylotto.wasm.config import WasmConfig, WasmFunctionSpec
    from pylotto.wasm.runner import WasmFunctions

    path = tmp_path / "bad.wasm"
    path.write_bytes(b"\0asm garbage")
    with pytest.raises(ConfigError, match="wasm function 'bad': cannot load"):
        WasmFunctions(WasmConfig(functions=[WasmFunctionSpec(id="bad", path=path)]))
