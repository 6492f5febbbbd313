"""Running functions: one fresh store and instance per call, in a worker thread, under limits.

Limits per call (from the function's config):

* **fuel** — wasmtime charges fuel as the guest executes; empty: ``ResourceExhausted``.
* **memory** — the store refuses to grow linear memory past ``memory_mb`` (``memory.grow``
  returns -1); a guest that then traps, or a module needing more at start, gets
  ``ResourceExhausted``.
* **wall time** — an engine epoch ticks every :data:`EPOCH_TICK_SECONDS`; the guest is
  interrupted after ``timeout`` (``DeadlineExceeded``); host calls wait no longer than that.

Any other trap is ``Internal`` naming the function and the trap. The guest's store is dropped
after each call, so a failed call leaves nothing behind and the sidecar keeps serving.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import wasmtime

from pylotto.core.errors import (
    ConfigError,
    DeadlineExceeded,
    Internal,
    PylottoError,
    ResourceExhausted,
)
from pylotto.wasm.abi import EXPORT_HANDLE, unpack
from pylotto.wasm.config import WasmConfig, WasmFunctionSpec
from pylotto.wasm.host import (
    CallContext,
    Capabilities,
    define_host_functions,
    read_bytes,
    write_bytes,
)
from pylotto.wasm.loader import ModuleFile

if TYPE_CHECKING:
    from pylotto.capabilities.invoke import InvokeRequest, InvokeResult

log = logging.getLogger("pylotto.wasm")

EPOCH_TICK_SECONDS = 0.01
WORKER_THREADS = 8
"""Guest calls running at once; more wait for a free worker."""
MIB = 1024 * 1024
WASM_PAGE = 65536


def new_engine() -> wasmtime.Engine:
    """An engine that meters fuel and can be interrupted by epoch."""
    config = wasmtime.Config()
    config.consume_fuel = True
    config.epoch_interruption = True
    return wasmtime.Engine(config)


CapsFactory = Callable[[asyncio.AbstractEventLoop], Capabilities]
"""Builds the host functions' view of the sidecar for one call (on the loop's thread)."""


class _EpochTicker:
    """A daemon thread advancing the engine's epoch every tick."""

    def __init__(self, engine: wasmtime.Engine) -> None:
        self._engine = engine
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="wasm-epoch", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(EPOCH_TICK_SECONDS):
            self._engine.increment_epoch()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()


class WasmFunctions:
    """The configured functions, invoked by id (the id is an app id to callers)."""

    def __init__(self, config: WasmConfig, caps_factory: CapsFactory | None = None, *,
                 base_dir: Path | None = None) -> None:
        self.config = config
        self.engine = new_engine()
        base = config.base_dir or base_dir or Path.cwd()
        self.specs: dict[str, WasmFunctionSpec] = {}
        self.modules: dict[str, ModuleFile] = {}
        for spec in config.functions:
            if spec.id in self.specs:
                raise ConfigError(f"wasm function id {spec.id!r} is listed twice")
            path = spec.path if spec.path.is_absolute() else base / spec.path
            self.specs[spec.id] = spec
            self.modules[spec.id] = ModuleFile(spec.id, self.engine, path)
        self.caps_factory = caps_factory
        self._ticker = _EpochTicker(self.engine)
        self._executor = ThreadPoolExecutor(WORKER_THREADS, thread_name_prefix="wasm")
        self._started = False

    def __contains__(self, function_id: object) -> bool:
        return function_id in self.specs

    def start(self) -> None:
        if not self._started:
            self._ticker.start()
            self._started = True

    def close(self) -> None:
        """Stop the ticker; calls in flight finish (their time limit still applies)."""
        if self._started:
            self._ticker.stop()
            self._started = False
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def call(self, function_id: str, method: str, data: bytes,
                   limit_seconds: float | None = None) -> tuple[bytes, str]:
        """Run function ``function_id`` on ``data``: (reply, content type)."""
        self.start()
        spec = self.specs[function_id]
        limit = spec.timeout if limit_seconds is None else min(spec.timeout, limit_seconds)
        loop = asyncio.get_running_loop()
        caps = self.caps_factory(loop) if self.caps_factory else Capabilities(loop)
        ctx = CallContext(function_id, method, time.monotonic() + limit, caps)
        module = self.modules[function_id].current()
        return await loop.run_in_executor(
            self._executor, self._run, spec, module, ctx, data, limit)

    async def invoke(self, request: InvokeRequest, limit_seconds: float | None
                     ) -> InvokeResult:
        """A service invocation whose app id is a function id; ``limit_seconds``: what the
        caller allows (the invocation capability's timeout rule), None for the function's."""
        from pylotto.capabilities.invoke import InvokeResult

        data, content_type = await self.call(request.app_id, request.method, request.data,
                                             limit_seconds)
        return InvokeResult(data, content_type)

    # ---- in the worker thread --------------------------------------------------------------

    def _run(self, spec: WasmFunctionSpec, module: wasmtime.Module, ctx: CallContext,
             data: bytes, limit: float) -> tuple[bytes, str]:
        fid = spec.id
        if len(data) + WASM_PAGE > spec.memory_mb * MIB:
            raise ResourceExhausted(f"wasm function {fid!r}: a request of {len(data)} bytes "
                                    f"does not fit its memory limit of {spec.memory_mb} MiB")
        store = wasmtime.Store(self.engine)
        store.set_fuel(spec.fuel)
        store.set_epoch_deadline(max(1, math.ceil(limit / EPOCH_TICK_SECONDS)))
        store.set_limits(memory_size=spec.memory_mb * MIB)
        linker = wasmtime.Linker(self.engine)
        define_host_functions(linker, ctx)
        instance: wasmtime.Instance | None = None
        try:
            instance = linker.instantiate(store, module)
            handle = instance.exports(store).get(EXPORT_HANDLE)
            if not isinstance(handle, wasmtime.Func):
                raise Internal(f"wasm function {fid!r}: the module does not export "
                               f"{EXPORT_HANDLE!r}(ptr, len) -> i64")
            exports = instance.exports(store)
            packed_request = write_bytes(store, exports, data)
            ptr, length = unpack(packed_request)
            packed = handle(store, ptr, length)
            if not isinstance(packed, int):
                raise Internal(f"wasm function {fid!r}: {EXPORT_HANDLE!r} must return an i64")
            reply_ptr, reply_len = unpack(packed)
            reply = read_bytes(store, exports, reply_ptr, reply_len)
            return reply, ctx.content_type
        except PylottoError:
            raise
        except wasmtime.Trap as trap:
            raise self._trap_error(spec, store, instance, trap) from None
        except wasmtime.WasmtimeError as exc:
            raise self._load_error(spec, exc) from None

    @staticmethod
    def _trap_error(spec: WasmFunctionSpec, store: wasmtime.Store,
                    instance: wasmtime.Instance | None, trap: wasmtime.Trap) -> PylottoError:
        fid = spec.id
        code = trap.trap_code
        if code == wasmtime.TrapCode.OUT_OF_FUEL:
            return ResourceExhausted(f"wasm function {fid!r} ran out of fuel "
                                     f"(limit {spec.fuel}) and was stopped")
        if code == wasmtime.TrapCode.INTERRUPT:
            return DeadlineExceeded(f"wasm function {fid!r} ran past its time limit "
                                    "and was stopped")
        message = _trap_reason(trap)
        if instance is not None and _memory_full(store, instance, spec):
            return ResourceExhausted(f"wasm function {fid!r} reached its memory limit of "
                                     f"{spec.memory_mb} MiB and trapped: {message}")
        used = ""
        if instance is not None:
            memory = instance.exports(store).get("memory")
            if isinstance(memory, wasmtime.Memory):
                used = (f" (memory in use: {memory.data_len(store) // 1024} KiB of "
                        f"{spec.memory_mb} MiB)")
        return Internal(f"wasm function {fid!r} trapped: {message}{used}")

    @staticmethod
    def _load_error(spec: WasmFunctionSpec, exc: wasmtime.WasmtimeError) -> PylottoError:
        text = str(exc).strip()
        first = text.splitlines()[0] if text else type(exc).__name__
        if "memory" in text and ("limit" in text or "resource" in text or "minimum" in text):
            return ResourceExhausted(f"wasm function {spec.id!r} needs more memory than its "
                                     f"limit of {spec.memory_mb} MiB: {first}")
        return Internal(f"wasm function {spec.id!r} could not start: {text}")


def _trap_reason(trap: wasmtime.Trap) -> str:
    """The trap's cause ("wasm trap: integer divide by zero"), without the backtrace."""
    lines = [line.strip() for line in trap.message.splitlines() if line.strip()]
    if "Caused by:" in lines:
        return " ".join(lines[lines.index("Caused by:") + 1:])
    return lines[0] if lines else str(trap.trap_code)


def _memory_full(store: wasmtime.Store, instance: wasmtime.Instance,
                 spec: WasmFunctionSpec) -> bool:
    """True when the guest's memory cannot grow by one more page: a trap then is taken to be
    the guest's reaction to ``memory.grow`` returning -1."""
    memory = instance.exports(store).get("memory")
    if not isinstance(memory, wasmtime.Memory):
        return False
    return memory.data_len(store) + WASM_PAGE > spec.memory_mb * MIB
