"""What ``--workers`` makes of the embedded default (pylotto.process.worker_components)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pylotto.config.model import ComponentSpec, RuntimeConfig, embedded_default
from pylotto.core.errors import ConfigError
from pylotto.process import worker_components
from pylotto.process.assembly import actor_state_store
from pylotto.process.worker_components import for_workers
from pylotto.process.workers import refuse_per_process


def _by_name(config: RuntimeConfig) -> dict[tuple[str, str], ComponentSpec]:
    return {(spec.capability, spec.name): spec for spec in config.components}


def test_the_default_is_made_shareable_and_what_is_not_is_left_out(tmp_path: Path) -> None:
    shared, notes = for_workers(embedded_default(), tmp_path)
    specs = _by_name(shared)
    for capability in ("state", "lock", "sequencer"):  # same names, over scratch files
        spec = specs[(capability, "in-memory")]
        assert spec.type == "sqlite"
        assert spec.metadata == {"connectionString": str(tmp_path / f"{capability}-in-memory.db")}
    assert ("pubsub", "in-memory") not in specs
    assert ("configuration", "in-memory") not in specs
    durable = specs[("state", "sqlite")]  # stays on its file under the data dir
    assert durable.type == "sqlite" and "connectionString" not in durable.metadata
    assert shared.scheduler.state_store == "sqlite"  # the durable store, not a scratch file
    assert sum("left out" in note for note in notes) == 2
    assert sum("shared by the workers" in note for note in notes) == 3
    refuse_per_process(shared)  # nothing left that workers cannot share


def test_a_files_components_are_left_as_written(tmp_path: Path) -> None:
    config = RuntimeConfig(components=[
        ComponentSpec(name="cache", capability="state", type="in-memory"),
        ComponentSpec(name="in-memory", capability="lock", type="in-memory",
                      metadata={"keyPrefix": "name"})])
    assert for_workers(config, tmp_path) == (config, [])
    with pytest.raises(ConfigError, match=r"state\.cache \(in-memory\), lock\.in-memory"):
        refuse_per_process(config)


def test_the_actor_store_mark_of_the_default_is_dropped(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With the default marking its sqlite store as the actor state store, workers run with
    actors off instead of being refused."""
    def marked() -> RuntimeConfig:
        config = embedded_default()
        return config.model_copy(update={"components": [
            spec.model_copy(update={"metadata": {"actorStateStore": "true"}})
            if (spec.capability, spec.name) == ("state", "sqlite") else spec
            for spec in config.components]})

    monkeypatch.setattr(worker_components, "embedded_default", marked)
    assert actor_state_store(marked()) == "sqlite"
    shared, notes = for_workers(marked(), tmp_path)
    assert actor_state_store(shared) == ""
    assert any("actors and workflows are off" in note for note in notes)
    refuse_per_process(shared)


def test_a_hot_reload_in_a_worker_keeps_the_default_shared_and_refuses_local_data(
        tmp_path: Path) -> None:
    from pylotto.process.workers import WorkerSources

    dapr = tmp_path / "config.yaml"  # a Dapr Configuration: the embedded default's components
    dapr.write_text("apiVersion: dapr.io/v1alpha1\nkind: Configuration\n"
                    "metadata:\n  name: demo\nspec: {}\n")
    specs = _by_name(RuntimeConfig(components=WorkerSources(dapr, (), tmp_path).load("demo")))
    assert specs[("state", "in-memory")].type == "sqlite"
    assert ("pubsub", "in-memory") not in specs

    own = tmp_path / "pylotto.yaml"
    own.write_text("components:\n  state:\n    cache:\n      type: in-memory\n")
    with pytest.raises(ConfigError, match=r"state\.cache \(in-memory\)"):
        WorkerSources(own, (), tmp_path).load("demo")
