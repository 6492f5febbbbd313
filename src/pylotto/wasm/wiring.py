"""Building :class:`WasmFunctions` for a runtime: host functions reach its capabilities."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

from pylotto.core.errors import ConfigError

if TYPE_CHECKING:
    from pylotto.process.runtime import Runtime
    from pylotto.wasm.runner import WasmFunctions


def wasm_functions(runtime: Runtime) -> WasmFunctions:
    """The functions of ``runtime.config.wasm``; relative paths start at the config file."""
    try:
        from pylotto.wasm.host import Capabilities
        from pylotto.wasm.runner import WasmFunctions
    except ImportError as exc:  # wasmtime is an optional dependency
        raise ConfigError(f"the wasm section needs wasmtime: pip install 'pylotto[wasm]' "
                          f"({exc})") from None
    config = runtime.config.wasm
    assert config is not None
    source = Path(runtime.config.source)
    base = source.parent if source.is_file() else Path.cwd()

    def caps(loop: asyncio.AbstractEventLoop) -> Capabilities:
        return Capabilities(loop, state=runtime.state, pubsub=runtime.pubsub,
                            invoke=runtime.invoke, state_store=config.state_store,
                            pubsub_name=config.pubsub)

    return WasmFunctions(config, caps, base_dir=base)
