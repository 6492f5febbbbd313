"""Compiling modules once and reloading them when their file changes.

Each call asks :meth:`ModuleFile.current` for the module; it compares the file's modification
time and size with the ones last compiled (a cheap ``stat``) and recompiles on a change. A new
file that fails to compile is logged and the previous module keeps serving.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import wasmtime

from pylotto.core.errors import ConfigError

log = logging.getLogger("pylotto.wasm")


@dataclass(frozen=True, slots=True)
class _Stamp:
    mtime_ns: int
    size: int


def _stamp(path: Path) -> _Stamp:
    info = os.stat(path)
    return _Stamp(info.st_mtime_ns, info.st_size)


def compile_module(engine: wasmtime.Engine, path: Path) -> wasmtime.Module:
    """The module in ``path``: a binary ``.wasm`` or WebAssembly text (``.wat``)."""
    data = path.read_bytes()
    if data[:4] == b"\0asm":
        return wasmtime.Module(engine, data)
    return wasmtime.Module(engine, data.decode("utf-8"))


class ModuleFile:
    """One function's module file, compiled, recompiled when the file changes."""

    def __init__(self, function_id: str, engine: wasmtime.Engine, path: Path) -> None:
        self.function_id = function_id
        self.engine = engine
        self.path = path
        self._lock = threading.Lock()
        try:
            self._stamp = _stamp(path)
            self._module = compile_module(engine, path)
        except (OSError, UnicodeDecodeError, wasmtime.WasmtimeError) as exc:
            raise ConfigError(f"wasm function {function_id!r}: cannot load {path}: "
                              f"{_reason(exc)}") from None
        self.generation = 1
        """How many versions of the file were loaded (1 at start)."""

    def current(self) -> wasmtime.Module:
        """The module to run now: the file's latest version that compiled."""
        with self._lock:
            try:
                stamp = _stamp(self.path)
            except OSError as exc:
                log.error("wasm function %r: cannot stat %s (%s); keeping the loaded module",
                          self.function_id, self.path, exc.strerror)
                return self._module
            if stamp != self._stamp:
                self._stamp = stamp  # a broken file is reported once, not on every call
                try:
                    self._module = compile_module(self.engine, self.path)
                except (OSError, UnicodeDecodeError, wasmtime.WasmtimeError) as exc:
                    log.error("wasm function %r: the changed module %s does not load (%s); "
                              "keeping the previous one", self.function_id, self.path,
                              _reason(exc))
                else:
                    self.generation += 1
                    log.info("wasm function %r: reloaded %s (version %d)", self.function_id,
                             self.path, self.generation)
            return self._module


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
