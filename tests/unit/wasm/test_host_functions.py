"""Every host function, called from WAT guests running in a real runtime."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest

from pylotto.capabilities.invoke import InvokeRequest
from pylotto.components.pubsub.base import Message, PubSub
from pylotto.core.errors import ComponentNotFound, Internal
from tests.unit.wasm.conftest import RuntimeFactory, call
from tests.unit.wasm.wat import ECHO, module

# data segment: "in-memory" @0 (9), "k" @16 (1), "topic-w" @32 (7), "echo" @48 (4),
# "again" @64 (5), "text/plain" @80 (10), "nope" @96 (4)
DATA = ("in-memory" + r"\00" * 7 + "k" + r"\00" * 15 + "topic-w" + r"\00" * 9 + "echo"
        + r"\00" * 12 + "again" + r"\00" * 11 + "text/plain" + r"\00" * 6 + "nope")


async def test_echo_reply_is_the_request(wasm_runtime: RuntimeFactory) -> None:
    runtime = await wasm_runtime({"echo": ECHO})
    assert await call(runtime, "echo", b"hello wasm") == b"hello wasm"
    assert await call(runtime, "echo", b"") == b""


async def test_method_and_content_type(wasm_runtime: RuntimeFactory) -> None:
    fn = module("(call $set_content_type (i32.const 80) (i32.const 10)) (call $method)", DATA)
    runtime = await wasm_runtime({"m": fn})
    result = await runtime.services.invoke.invoke(InvokeRequest(app_id="m", method="orders/list"))
    assert result.data == b"orders/list"
    assert result.content_type == "text/plain"


async def test_state_set_then_get(wasm_runtime: RuntimeFactory) -> None:
    fn = module("""
      (call $state_set (i32.const 0) (i32.const 9) (i32.const 16) (i32.const 1)
                       (local.get $ptr) (local.get $len))
      (call $state_get (i32.const 0) (i32.const 9) (i32.const 16) (i32.const 1))""", DATA)
    runtime = await wasm_runtime({"st": fn})
    assert await call(runtime, "st", b"v1") == b"v1"
    got = await runtime.services.state.get_state("in-memory", "k")
    assert got.value == b"v1"


async def test_empty_store_name_uses_the_configured_default(
        wasm_runtime: RuntimeFactory) -> None:
    fn = module("""
      (call $state_set (i32.const 0) (i32.const 0) (i32.const 16) (i32.const 1)
                       (local.get $ptr) (local.get $len))
      (call $state_get (i32.const 0) (i32.const 0) (i32.const 16) (i32.const 1))""", DATA)
    runtime = await wasm_runtime({"st": fn})
    assert await call(runtime, "st", b"dflt") == b"dflt"
    assert (await runtime.services.state.get_state("in-memory", "k")).value == b"dflt"


async def test_state_get_of_missing_key_is_empty(wasm_runtime: RuntimeFactory) -> None:
    fn = module("(call $state_get (i32.const 0) (i32.const 9) (i32.const 96) (i32.const 4))",
                DATA)
    runtime = await wasm_runtime({"st": fn})
    assert await call(runtime, "st") == b""


async def test_host_error_reaches_the_caller_with_its_status(
        wasm_runtime: RuntimeFactory) -> None:
    fn = module("(call $state_get (i32.const 96) (i32.const 4) (i32.const 16) (i32.const 1))",
                DATA)
    runtime = await wasm_runtime({"st": fn, "echo": ECHO})
    with pytest.raises(ComponentNotFound, match="nope"):
        await call(runtime, "st")
    assert await call(runtime, "echo", b"still here") == b"still here"


async def test_publish_reaches_a_subscriber(wasm_runtime: RuntimeFactory) -> None:
    fn = module("""
      (call $publish (i32.const 0) (i32.const 9) (i32.const 32) (i32.const 7)
                     (local.get $ptr) (local.get $len))
      (i64.const 0)""", DATA)
    runtime = await wasm_runtime({"pub": fn})
    broker = runtime.components["pubsub"]["in-memory"]
    assert isinstance(broker, PubSub)
    got: asyncio.Queue[Message] = asyncio.Queue()

    async def handler(message: Message) -> None:
        await got.put(message)

    subscription = await broker.subscribe("topic-w", handler, {})
    try:
        assert await call(runtime, "pub", b'{"n":1}') == b""
        message = await asyncio.wait_for(got.get(), 10)
        assert json.loads(message.data)["data"] == '{"n":1}'  # in a CloudEvent envelope
    finally:
        await subscription.close()


async def test_invoke_calls_another_function(wasm_runtime: RuntimeFactory) -> None:
    fn = module("""
      (call $invoke (i32.const 48) (i32.const 4) (i32.const 64) (i32.const 5)
                    (local.get $ptr) (local.get $len))""", DATA)
    runtime = await wasm_runtime({"caller": fn, "echo": ECHO})
    assert await call(runtime, "caller", b"ping") == b"ping"


async def test_log_goes_to_the_sidecar_log(wasm_runtime: RuntimeFactory,
                                           caplog: pytest.LogCaptureFixture) -> None:
    fn = module("(call $log (i32.const 2) (local.get $ptr) (local.get $len)) (i64.const 0)")
    runtime = await wasm_runtime({"logger": fn})
    with caplog.at_level(logging.DEBUG, logger="pylotto.wasm.guest"):
        await call(runtime, "logger", b"hello from the guest")
    records = [r for r in caplog.records if r.name == "pylotto.wasm.guest"]
    assert records and records[0].levelno == logging.WARNING
    assert "[logger] hello from the guest" in records[0].getMessage()


async def test_env_abort_ends_the_call_with_the_message(wasm_runtime: RuntimeFactory) -> None:
    # AssemblyScript strings: UTF-16LE, byte length in the 4 bytes before the text
    data = r"\04\00\00\00o\00k\00" + r"\00" * 8 + r"\02\00\00\00f\00"
    fn = module(r"""
      (module_abort (i32.const 4) (i32.const 20) (i32.const 7) (i32.const 3))
      (i64.const 0)""", data).replace(
        '  (memory (export "memory") 1)',
        '  (import "env" "abort" (func $module_abort (param i32 i32 i32 i32)))\n'
        '  (memory (export "memory") 1)').replace("(module_abort", "(call $module_abort")
    runtime = await wasm_runtime({"as": fn})
    with pytest.raises(Internal, match="wasm function 'as' aborted: ok at f:7:3"):
        await call(runtime, "as")


async def test_unknown_import_is_internal(wasm_runtime: RuntimeFactory) -> None:
    fn = ECHO.replace('  (memory (export "memory") 1)',
                      '  (import "pylotto" "nope" (func $nope))\n  (memory (export "memory") 1)')
    runtime = await wasm_runtime({"odd": fn})
    with pytest.raises(Internal, match=r"wasm function 'odd' could not start: .*nope"):
        await call(runtime, "odd")
