"""Host functions a guest imports from module ``pylotto``.

wasmtime runs the guest in a worker thread; a host function that needs the (async) capability
layer schedules the coroutine on the sidecar's event loop and waits for it, never longer than
the call's wall-time budget. An error from the capability layer ends the guest call with that
same error (so the caller gets its usual status).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import wasmtime

from pylotto.core.errors import DeadlineExceeded, Internal, InvalidArgument
from pylotto.wasm.abi import (
    EXPORT_ALLOC,
    EXPORT_MEMORY,
    IMPORT_MODULE,
    LOG_LEVELS,
    pack,
)

if TYPE_CHECKING:
    from pylotto.capabilities.invoke import InvokeCapability
    from pylotto.capabilities.pubsub import PubSubCapability
    from pylotto.capabilities.state import StateCapability

T = TypeVar("T")
log = logging.getLogger("pylotto.wasm.guest")

I32 = wasmtime.ValType.i32()
I64 = wasmtime.ValType.i64()


@dataclass
class Capabilities:
    """What host functions reach: the sidecar's capability services and its loop."""

    loop: asyncio.AbstractEventLoop
    state: StateCapability | None = None
    pubsub: PubSubCapability | None = None
    invoke: InvokeCapability | None = None
    state_store: str = ""
    pubsub_name: str = ""


@dataclass
class CallContext:
    """One guest call: its function id, method, deadline and the reply's content type."""

    function_id: str
    method: str
    deadline: float
    """``time.monotonic()`` value past which host calls give up."""
    caps: Capabilities
    content_type: str = "application/octet-stream"
    host_calls: list[str] = field(default_factory=list)

    def run(self, coro: Coroutine[Any, Any, T], what: str) -> T:
        """Run ``coro`` on the sidecar's loop from the guest's thread, within the deadline."""
        self.host_calls.append(what)
        left = self.deadline - time.monotonic()
        if left <= 0:
            coro.close()
            raise DeadlineExceeded(f"wasm function {self.function_id!r}: no time left for "
                                   f"host call {what}")
        future = asyncio.run_coroutine_threadsafe(coro, self.caps.loop)
        try:
            return future.result(timeout=left)
        except TimeoutError:
            future.cancel()
            raise DeadlineExceeded(f"wasm function {self.function_id!r}: host call {what} "
                                   "did not finish within the function's time limit") from None


Storelike = wasmtime.Store | wasmtime.Caller


def guest_memory(store: Storelike, exports: Any) -> wasmtime.Memory:
    """The guest's exported memory (``exports`` is a Caller or an instance's exports)."""
    memory = exports.get(EXPORT_MEMORY)
    if not isinstance(memory, wasmtime.Memory):
        raise Internal(f"the module does not export its memory as {EXPORT_MEMORY!r}")
    return memory


def read_bytes(store: Storelike, exports: Any, ptr: int, length: int) -> bytes:
    """``length`` bytes of guest memory at ``ptr`` (bounds checked)."""
    if length == 0:
        return b""
    memory = guest_memory(store, exports)
    if ptr < 0 or length < 0 or ptr + length > memory.data_len(store):
        raise InvalidArgument(f"the function passed memory [{ptr}, {ptr + length}) outside "
                              "its linear memory")
    return bytes(memory.read(store, ptr, ptr + length))


def read_str(caller: wasmtime.Caller, ptr: int, length: int) -> str:
    try:
        return read_bytes(caller, caller, ptr, length).decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidArgument("the function passed a string that is not UTF-8") from None


def write_bytes(store: Storelike, exports: Any, data: bytes) -> int:
    """Copy ``data`` into guest memory (room from the guest's ``alloc``); packed ptr/len."""
    if not data:
        return 0
    alloc = exports.get(EXPORT_ALLOC)
    if not isinstance(alloc, wasmtime.Func):
        raise Internal(f"the module does not export {EXPORT_ALLOC!r}(len) -> ptr")
    ptr = alloc(store, len(data))
    if not isinstance(ptr, int):
        raise Internal(f"{EXPORT_ALLOC!r} did not return an i32 pointer")
    memory = guest_memory(store, exports)
    if ptr < 0 or ptr + len(data) > memory.data_len(store):
        raise Internal(f"{EXPORT_ALLOC}({len(data)}) returned {ptr}, outside the memory")
    memory.write(store, data, ptr)
    return pack(ptr, len(data))


def define_host_functions(linker: wasmtime.Linker, ctx: CallContext) -> None:
    """Define every ``pylotto.*`` import (and ``env.abort``) on ``linker`` for one call."""
    caps = ctx.caps

    def host_log(caller: wasmtime.Caller, level: int, ptr: int, length: int) -> None:
        text = read_str(caller, ptr, length)
        log.log(logging.getLevelName(LOG_LEVELS.get(level, "INFO")), "[%s] %s",
                ctx.function_id, text)

    def host_method(caller: wasmtime.Caller) -> int:
        return write_bytes(caller, caller, ctx.method.encode())

    def host_set_content_type(caller: wasmtime.Caller, ptr: int, length: int) -> None:
        ctx.content_type = read_str(caller, ptr, length)

    def host_state_get(caller: wasmtime.Caller, sp: int, sl: int, kp: int, kl: int) -> int:
        state = caps.state
        if state is None:
            raise Internal("state is not available to wasm functions")
        store = read_str(caller, sp, sl) or caps.state_store
        key = read_str(caller, kp, kl)
        got = ctx.run(state.get_state(store, key), f"state_get({store}, {key})")
        return write_bytes(caller, caller, got.value)

    def host_state_set(caller: wasmtime.Caller, sp: int, sl: int, kp: int, kl: int,
                       vp: int, vl: int) -> None:
        from pylotto.capabilities.state import StateItem

        state = caps.state
        if state is None:
            raise Internal("state is not available to wasm functions")
        store = read_str(caller, sp, sl) or caps.state_store
        key = read_str(caller, kp, kl)
        value = read_bytes(caller, caller, vp, vl)
        ctx.run(state.save_state(store, [StateItem(key, value)]), f"state_set({store}, {key})")

    def host_publish(caller: wasmtime.Caller, pp: int, pl: int, tp: int, tl: int,
                     dp: int, dl: int) -> None:
        from pylotto.capabilities.pubsub import PublishRequest

        pubsub = caps.pubsub
        if pubsub is None:
            raise Internal("pub/sub is not available to wasm functions")
        name = read_str(caller, pp, pl) or caps.pubsub_name
        topic = read_str(caller, tp, tl)
        data = read_bytes(caller, caller, dp, dl)
        ctx.run(pubsub.publish(PublishRequest(name, topic, data)),
                f"publish({name}, {topic})")

    def host_invoke(caller: wasmtime.Caller, ap: int, al: int, mp: int, ml: int,
                    dp: int, dl: int) -> int:
        from pylotto.capabilities.invoke import InvokeRequest

        invoke = caps.invoke
        if invoke is None:
            raise Internal("service invocation is not available to wasm functions")
        app_id = read_str(caller, ap, al)
        method = read_str(caller, mp, ml)
        data = read_bytes(caller, caller, dp, dl)
        left = max(ctx.deadline - time.monotonic(), 0.001)
        result = ctx.run(invoke.invoke(InvokeRequest(
            app_id=app_id, method=method, data=data, verb="POST", deadline_seconds=left)),
            f"invoke({app_id}, {method})")
        return write_bytes(caller, caller, result.data)

    def env_abort(caller: wasmtime.Caller, msg: int, file: int, line: int, col: int) -> None:
        raise Internal(f"wasm function {ctx.function_id!r} aborted: "
                       f"{_as_string(caller, msg)} at {_as_string(caller, file)}:{line}:{col}")

    def ty(params: int, result: wasmtime.ValType | None = None) -> wasmtime.FuncType:
        return wasmtime.FuncType([I32] * params, [result] if result else [])

    define = linker.define_func
    define(IMPORT_MODULE, "log", ty(3), host_log, access_caller=True)
    define(IMPORT_MODULE, "method", ty(0, I64), host_method, access_caller=True)
    define(IMPORT_MODULE, "set_content_type", ty(2), host_set_content_type,
           access_caller=True)
    define(IMPORT_MODULE, "state_get", ty(4, I64), host_state_get, access_caller=True)
    define(IMPORT_MODULE, "state_set", ty(6), host_state_set, access_caller=True)
    define(IMPORT_MODULE, "publish", ty(6), host_publish, access_caller=True)
    define(IMPORT_MODULE, "invoke", ty(6, I64), host_invoke, access_caller=True)
    define("env", "abort", ty(4), env_abort, access_caller=True)


def _as_string(caller: wasmtime.Caller, ptr: int) -> str:
    """An AssemblyScript string (UTF-16LE, byte length at ``ptr - 4``); "?" if unreadable."""
    if ptr < 4:
        return "?"
    try:
        length = int.from_bytes(read_bytes(caller, caller, ptr - 4, 4), "little")
        return read_bytes(caller, caller, ptr, length).decode("utf-16-le", errors="replace")
    except (InvalidArgument, Internal):
        return "?"
