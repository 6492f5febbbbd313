"""Fixtures shared by the conformance suites: real sidecar processes built from a case."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conformance.cases import Case
from tests.e2e.sidecar import Sidecar
from tests.support.servers import require

STORE = "store"
"""The component name every suite uses."""

StartSidecar = Callable[[Case], Sidecar]


@pytest.fixture
def start_sidecar(tmp_path: Path) -> Iterator[StartSidecar]:
    """``start_sidecar(case)`` → a ready ``pylotto run`` serving the case's component as
    ``store`` (app id ``conformance``); stopped at the end of the test."""
    started: list[Sidecar] = []

    def start(case: Case) -> Sidecar:
        require(*case.servers)
        components = {case.capability: {STORE: {
            "type": case.type, "metadata": case.resolved_metadata(),
        }}}
        car = Sidecar(tmp_path / f"sidecar{len(started)}", components,
                      {"id": "conformance"})
        started.append(car)
        return car.start()

    yield start
    for car in started:
        car.stop()


@pytest.fixture(scope="session", autouse=True)
def _remove_run_data() -> Iterator[None]:
    """Drop the tables, keys and nodes this run created on the shared servers."""
    yield
    import asyncio

    from tests.conformance.cases import RUN_PREFIX
    from tests.support.cleanup import remove_run_data

    asyncio.run(remove_run_data(RUN_PREFIX))
