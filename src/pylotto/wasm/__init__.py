"""WebAssembly functions: ``.wasm`` modules served by id through service invocation.

A function listed in the ``wasm:`` section of ``pylotto.yaml`` answers InvokeService / Dapr
invoke calls whose app id is the function's id. The guest ABI is in :mod:`pylotto.wasm.abi`
and docs/wasm.md; limits (fuel, memory, wall time) in :mod:`pylotto.wasm.runner`.
"""

from pylotto.wasm.config import WasmConfig, WasmFunctionSpec

__all__ = ["WasmConfig", "WasmFunctionSpec"]
