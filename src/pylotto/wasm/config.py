"""The ``wasm:`` section of ``pylotto.yaml``.

Example::

    wasm:
      state_store: redis        # used when a function passes an empty store name
      pubsub: in-memory         # used when a function passes an empty pub/sub name
      functions:
        - id: greeter           # invoked as app id "greeter"
          path: functions/greeter.wasm   # relative to the config file
          fuel: 100000000       # wasm instructions (roughly) per call
          memory_mb: 16         # linear memory ceiling per call
          timeout: 2.0          # wall-clock seconds per call
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

DEFAULT_FUEL = 100_000_000
DEFAULT_MEMORY_MB = 16
DEFAULT_TIMEOUT_SECONDS = 2.0


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class WasmFunctionSpec(_Model):
    """One function: its id (the app id callers invoke), its module file and its limits."""

    id: str = Field(min_length=1)
    path: Path
    """A ``.wasm`` binary or a ``.wat`` text module; relative paths start at the config file."""
    fuel: int = Field(DEFAULT_FUEL, gt=0)
    """Fuel per call (wasmtime charges about one unit per instruction); out of fuel:
    ResourceExhausted."""
    memory_mb: int = Field(DEFAULT_MEMORY_MB, gt=0)
    """Linear memory ceiling in MiB; ``memory.grow`` past it fails (ResourceExhausted)."""
    timeout: float = Field(DEFAULT_TIMEOUT_SECONDS, gt=0)
    """Wall-clock seconds per call, host calls included; past it: DeadlineExceeded."""


class WasmConfig(_Model):
    """The functions and which components their host calls use by default."""

    functions: list[WasmFunctionSpec] = Field(default_factory=list)
    state_store: str = ""
    """State store for ``state_get``/``state_set`` with an empty store name."""
    pubsub: str = ""
    """Pub/sub component for ``publish`` with an empty pub/sub name."""
    base_dir: Path | None = None
    """Where relative ``path`` values start; None: the config file's directory (or cwd)."""
