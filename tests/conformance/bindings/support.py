"""What the bindings suites share: a case's binding built and reached through the bindings
capability, as InvokeBinding reaches it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pylotto.capabilities.base import ComponentSet, RuntimeContext
from pylotto.capabilities.bindings import BindingsCapability
from pylotto.components.bindings.base import BindingResponse, OutputBinding
from pylotto.config.model import AppConfig
from tests.conformance.cases import Case, build
from tests.conformance.conftest import STORE


@dataclass
class Bound:
    """A built binding and the capability serving it under the name ``store``."""

    component: OutputBinding
    capability: BindingsCapability

    async def invoke(self, operation: str, data: bytes = b"", /,
                     **metadata: str) -> BindingResponse:
        return await self.capability.invoke(STORE, operation, data, metadata)


def extra_metadata(case: Case, tmp_path: Path) -> dict[str, Any]:
    """Metadata a case cannot spell in cases.yaml: localstorage's root is the test's folder."""
    return {"rootPath": str(tmp_path / "files")} if case.type.endswith("localstorage") else {}


@asynccontextmanager
async def bound(case: Case, tmp_path: Path, **metadata: Any) -> AsyncIterator[Bound]:
    async with build(case, tmp_path, **{**extra_metadata(case, tmp_path), **metadata}) as built:
        assert isinstance(built, OutputBinding)
        capability = BindingsCapability(
            ComponentSet("binding", {STORE: built}),
            RuntimeContext(AppConfig(app_id="conformance"), tmp_path))
        yield Bound(built, capability)
