"""Building :class:`WasmFunctions` for a sidecar: host functions reach its capability services.

Takes the services record (not the runtime), so the import goes one way: the process layer
imports this module, this module imports the capability layer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from pylotto.core.errors import ConfigError

if TYPE_CHECKING:
    from pylotto.capabilities.services import CapabilityServices
    from pylotto.wasm.config import WasmConfig
    from pylotto.wasm.runner import WasmFunctions


def wasm_functions(config: WasmConfig, source: str,
                   services: Callable[[], CapabilityServices]) -> WasmFunctions:
    """The functions of ``config``; relative paths start at the config file ``source``.
    ``services``: the sidecar's services, looked up on each call (the functions are built
    with them, before the record exists)."""
    try:
        from pylotto.wasm.host import Capabilities
        from pylotto.wasm.runner import WasmFunctions
    except ImportError as exc:  # wasmtime is an optional dependency
        raise ConfigError(f"the wasm section needs wasmtime: pip install 'pylotto[wasm]' "
                          f"({exc})") from None
    path = Path(source)
    base = path.parent if path.is_file() else Path.cwd()

    def caps(loop: asyncio.AbstractEventLoop) -> Capabilities:
        record = services()
        return Capabilities(loop, state=record.state, pubsub=record.pubsub,
                            invoke=record.invoke, state_store=config.state_store,
                            pubsub_name=config.pubsub)

    return WasmFunctions(config, caps, base_dir=base)
