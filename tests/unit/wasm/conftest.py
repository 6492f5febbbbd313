"""A started runtime (embedded components) with WAT functions written into ``tmp_path``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from pylotto.capabilities.invoke import InvokeRequest
from pylotto.config.model import embedded_default
from pylotto.process.runtime import Runtime
from pylotto.wasm.config import WasmConfig, WasmFunctionSpec

RuntimeFactory = Callable[..., Awaitable[Runtime]]


@pytest.fixture
async def wasm_runtime(tmp_path: Path) -> AsyncIterator[RuntimeFactory]:
    """``await wasm_runtime({"id": "wat text", ...}, **limits)`` → a started Runtime."""
    started: list[Runtime] = []

    async def make(functions: dict[str, str], **limits: Any) -> Runtime:
        specs = []
        for fid, text in functions.items():
            path = tmp_path / f"{fid}.wat"
            path.write_text(text)
            specs.append(WasmFunctionSpec(id=fid, path=path, **limits))
        config = embedded_default().model_copy(update={
            "data_dir": tmp_path / "data",
            "wasm": WasmConfig(functions=specs, state_store="in-memory", pubsub="in-memory"),
        })
        runtime = Runtime(config)
        await runtime.start()
        started.append(runtime)
        return runtime

    yield make
    for runtime in started:
        await runtime.stop()


async def call(runtime: Runtime, fid: str, data: bytes = b"", method: str = "run") -> bytes:
    invoke = runtime.services.invoke
    result = await invoke.invoke(InvokeRequest(app_id=fid, method=method, data=data))
    return result.data
