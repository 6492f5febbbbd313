"""Fixtures of the state conformance suite: each test runs once per case of cases.yaml."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pylotto.capabilities.state import StateCapability
from pylotto.components.state.base import StateStore
from tests.conformance.cases import RUN_PREFIX, Case, build, load_cases
from tests.conformance.state.support import capability_over


@pytest.fixture(params=load_cases("state"))
def case(request: pytest.FixtureRequest) -> Case:
    chosen: Case = request.param
    return chosen


@pytest.fixture
async def store(case: Case, tmp_path: Path) -> AsyncIterator[StateStore]:
    """The case's store; keys are scoped by app id (Dapr's default ``keyPrefix``)."""
    async with build(case, tmp_path, keyPrefix="appid") as component:
        assert isinstance(component, StateStore)
        yield component


@pytest.fixture
def state(store: StateStore) -> StateCapability:
    return capability_over(store)


@pytest.fixture
def key() -> str:
    """A key no other test or run uses (the backends are shared)."""
    return f"{RUN_PREFIX}-{uuid.uuid4().hex[:12]}"
