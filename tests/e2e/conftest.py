"""Fixtures that run the real ``pylotto`` process (see sidecar.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.sidecar import Sidecar

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def sidecar(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sidecar]:
    """A sidecar with the embedded default components, shared by a test module."""
    car = Sidecar(tmp_path_factory.mktemp("sidecar")).start()
    yield car
    car.stop()


@pytest.fixture
def start_sidecar(tmp_path: Path) -> Iterator[Callable[..., Sidecar]]:
    """Factory: ``start_sidecar(components=None, app=None)`` → a ready Sidecar."""
    started: list[Sidecar] = []

    def start(
        components: dict[str, Any] | None = None,
        app: dict[str, Any] | None = None,
        extra_args: list[str] | None = None,
    ) -> Sidecar:
        car = Sidecar(tmp_path / f"sidecar{len(started)}", components, app, extra_args or [])
        started.append(car)
        return car.start()

    yield start
    for car in started:
        car.stop()
