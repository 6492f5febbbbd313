"""Fuel, memory and wall-time limits stop a runaway guest with a clear error; the runtime
keeps serving other calls afterwards."""

from __future__ import annotations

import pytest

from pylotto.core.errors import DeadlineExceeded, Internal, ResourceExhausted
from tests.unit.wasm.conftest import RuntimeFactory, call
from tests.unit.wasm.wat import ECHO, module

SPIN = module("(loop $forever (br $forever)) (i64.const 0)")
GROW = module("""
  (loop $more
    (br_if $more (i32.ge_s (memory.grow (i32.const 1)) (i32.const 0))))
  unreachable""")
"""Allocates page after page until ``memory.grow`` refuses, then traps (as allocators do)."""
TRAP = module("(i32.div_u (i32.const 1) (i32.const 0)) drop (i64.const 0)")


async def test_infinite_loop_runs_out_of_fuel(wasm_runtime: RuntimeFactory) -> None:
    runtime = await wasm_runtime({"spin": SPIN, "echo": ECHO}, fuel=1_000_000)
    with pytest.raises(ResourceExhausted, match=r"'spin' ran out of fuel \(limit 1000000\)"):
        await call(runtime, "spin")
    assert await call(runtime, "echo", b"alive") == b"alive"


async def test_infinite_loop_hits_the_time_limit(wasm_runtime: RuntimeFactory) -> None:
    runtime = await wasm_runtime({"spin": SPIN, "echo": ECHO}, fuel=10**15, timeout=0.3)
    with pytest.raises(DeadlineExceeded, match="'spin' ran past its time limit"):
        await call(runtime, "spin")
    assert await call(runtime, "echo", b"alive") == b"alive"


async def test_memory_grow_past_the_limit(wasm_runtime: RuntimeFactory) -> None:
    runtime = await wasm_runtime({"grow": GROW, "echo": ECHO}, memory_mb=1)
    with pytest.raises(ResourceExhausted, match="'grow' reached its memory limit of 1 MiB"):
        await call(runtime, "grow")
    assert await call(runtime, "echo", b"alive") == b"alive"


async def test_module_needing_more_memory_than_the_limit(
        wasm_runtime: RuntimeFactory) -> None:
    big = ECHO.replace('(memory (export "memory") 1)', '(memory (export "memory") 64)')
    runtime = await wasm_runtime({"big": big}, memory_mb=1)
    with pytest.raises(ResourceExhausted, match="'big' needs more memory than its limit"):
        await call(runtime, "big")


async def test_a_trap_is_internal_and_names_the_function(
        wasm_runtime: RuntimeFactory) -> None:
    runtime = await wasm_runtime({"div": TRAP, "echo": ECHO})
    with pytest.raises(Internal, match=r"'div' trapped: .*divide by zero \(memory in use: "
                                       r"64 KiB of 16 MiB\)"):
        await call(runtime, "div")
    assert await call(runtime, "echo", b"alive") == b"alive"


async def test_many_runaway_calls_leave_the_runtime_serving(
        wasm_runtime: RuntimeFactory) -> None:
    runtime = await wasm_runtime({"spin": SPIN, "echo": ECHO}, fuel=200_000)
    for _ in range(20):
        with pytest.raises(ResourceExhausted):
            await call(runtime, "spin")
    assert await call(runtime, "echo", b"alive") == b"alive"


async def test_request_bigger_than_the_memory_limit(wasm_runtime: RuntimeFactory) -> None:
    runtime = await wasm_runtime({"echo": ECHO}, memory_mb=1)
    with pytest.raises(ResourceExhausted, match="does not fit its memory limit of 1 MiB"):
        await call(runtime, "echo", b"x" * (1024 * 1024))
    assert await call(runtime, "echo", b"small") == b"small"
