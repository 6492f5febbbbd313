"""``state.json-file``: a state store keeping every item in one JSON file.

The file (metadata ``fileName``, default ``<component name>.json`` in the sidecar's data
folder) is read at ``init`` and rewritten atomically (write a temporary file, then rename) on
every write, so its content survives a restart and is always a complete, valid document.
Values are kept base64-encoded (they are opaque bytes); etags are decimal version numbers
from one counter per file, never reused. Every write — one item, a bulk or a transaction —
is one all-or-nothing batch, so the store declares ETAG and TRANSACTIONAL (not TTL).

Configuration::

    components:
      state:
        notes:
          type: state.json-file
          metadata:
            fileName: notes.json   # relative to data_dir, or absolute
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field

from pylotto.components.base import ComponentContext
from pylotto.components.state.base import (
    BatchStateStore,
    Consistency,
    Feature,
    GetResult,
    SetRequest,
    StateSettings,
    TransactionOp,
    check_write,
)
from pylotto.core.errors import ConfigError, Unavailable
from pylotto.core.metadata import ComponentSettings
from pylotto.core.types import Metadata


class JsonFileSettings(StateSettings):
    """Metadata of ``state.json-file`` (decoded and validated by pylotto before init)."""

    file_name: str = Field("", alias="fileName")
    """The JSON file; relative paths are under the sidecar's data folder. Default:
    ``<component name>.json``."""


class JsonFileStateStore(BatchStateStore):
    Settings: ClassVar[type[ComponentSettings]] = JsonFileSettings
    settings: JsonFileSettings
    features = frozenset({Feature.ETAG, Feature.TRANSACTIONAL})

    def __init__(self, name: str, settings: JsonFileSettings, context: ComponentContext) -> None:
        super().__init__(name, settings, context)
        path = Path(settings.file_name or f"{name}.json")
        self.path = path if path.is_absolute() else context.data_dir / path
        self._items: dict[str, tuple[bytes, int]] = {}
        self._version = 0
        self._write_lock = asyncio.Lock()

    async def init(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if self.path.exists():
                document = json.loads(self.path.read_text())
                self._version = int(document["version"])
                self._items = {key: (base64.b64decode(value), int(version))
                               for key, (value, version) in document["items"].items()}
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"state store {self.name}: cannot use {self.path}: {exc}") from exc

    async def get(self, key: str, consistency: Consistency, metadata: Metadata) -> GetResult | None:
        item = self._items.get(key)
        return None if item is None else GetResult(item[0], str(item[1]))

    async def apply(self, operations: Sequence[TransactionOp]) -> None:
        async with self._write_lock:  # one batch at a time: check, stage, save, publish
            staged = dict(self._items)
            version = self._version
            for op in operations:
                current = staged.get(op.key)
                check_write(op, current[1] if current else None, self.name)
                if isinstance(op, SetRequest):
                    version += 1
                    staged[op.key] = (op.value, version)
                else:
                    staged.pop(op.key, None)
            await asyncio.to_thread(self._save, staged, version)
            self._items, self._version = staged, version

    def _save(self, items: dict[str, tuple[bytes, int]], version: int) -> None:
        document: dict[str, Any] = {
            "version": version,
            "items": {key: [base64.b64encode(value).decode(), v]
                      for key, (value, v) in items.items()},
        }
        temporary = self.path.with_name(f".{self.path.name}.tmp")
        try:
            temporary.write_text(json.dumps(document))
            os.replace(temporary, self.path)
        except OSError as exc:
            raise Unavailable(f"state store {self.name}: cannot write {self.path}: {exc}") from exc
