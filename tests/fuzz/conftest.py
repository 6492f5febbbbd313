"""The sidecar under fuzz, the tally of its answers, and the run's size.

``PYLOTTO_FUZZ_EXAMPLES`` (default 800) sets the cases of each fuzz test, ``PYLOTTO_FUZZ_SEED``
(default 17) the seed: CI runs the default, fixed, short run; a longer local run is e.g.
``PYLOTTO_FUZZ_EXAMPLES=5000 pytest -m fuzz tests/fuzz`` (docs/operations.md).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.sidecar import Sidecar, free_port

EXAMPLES = int(os.environ.get("PYLOTTO_FUZZ_EXAMPLES", "800"))
SEED = int(os.environ.get("PYLOTTO_FUZZ_SEED", "17"))


@dataclass
class Tally:
    """Every answer of the run, by dialect and code, and the bad ones in full."""

    answers: Counter[tuple[str, str]] = field(default_factory=Counter, repr=False)
    bad: list[str] = field(default_factory=list, repr=False)

    @property
    def calls(self) -> int:
        return sum(self.answers.values())

    def count(self, dialect: str, code: str) -> None:
        self.answers[(dialect, code)] += 1

    def by_dialect(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for (dialect, code), n in sorted(self.answers.items()):
            out.setdefault(dialect, {})[code] = n
        return out


@dataclass
class FuzzTarget:
    car: Sidecar
    log_offset: int
    """Where the sidecar's log stood when the fuzzing began."""
    tally: Tally

    def log_since_start(self) -> list[str]:
        with self.car.log_path.open("rb") as log:
            log.seek(self.log_offset)
            return log.read().decode(errors="replace").splitlines()


def components() -> dict[str, Any]:
    """The embedded default components (the sqlite store is the actor state store), and an
    HTTP binding whose server is not there (so a binding call reaches a component, and its
    failure is the one answered)."""
    from pylotto.config.model import embedded_default

    out: dict[str, Any] = {}
    for spec in embedded_default().components:
        out.setdefault(spec.capability, {})[spec.name] = {"type": spec.type,
                                                          "metadata": spec.metadata}
    out["bindings"] = {"web": {"type": "http", "metadata": {
        "url": f"http://127.0.0.1:{free_port()}/api", "responseTimeout": "1s"}}}
    return out


NO_ACTOR_LOOKUP_RETRIES = {"policies": {"retries": {
    "DaprBuiltInActorNotFoundRetries": {"policy": "constant", "maxRetries": 0}}}}
"""An actor call to a type no app hosts (every fuzzed InvokeActor: the sidecar has no app)
is answered, as by daprd, after the built-in 5 x 1 s lookup retries: longer than a call's
deadline here. Dapr's documented override of that policy makes the answer come at once, so
the fuzz checks the answer (ERR_ACTOR_INVOKE_METHOD "did not find address") and keeps its
run time; the retries themselves are tested in tests/unit/capabilities/actors/test_router.py
and tests/e2e/test_dapr_actors.py."""


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FuzzTarget]:
    workdir: Path = tmp_path_factory.mktemp("fuzz")
    car = Sidecar(workdir, components(), extra_args=["--log-level", "info"],
                  extra_config={"resiliency": NO_ACTOR_LOOKUP_RETRIES}).start()
    try:
        yield FuzzTarget(car, car.log_path.stat().st_size, Tally())
    finally:
        car.stop()
