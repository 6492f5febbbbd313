"""``biggerThan`` as Layotto writes it (beside metadata) and as pylotto.yaml metadata."""

from __future__ import annotations

import json
from pathlib import Path

from pylotto.capabilities.sequencer import Increment, SequencerCapability
from pylotto.config.model import load
from pylotto.process.runtime import Runtime


async def _first_id(config_path: Path, store: str, key: str) -> int:
    config = load(config_path)
    config = config.model_copy(update={"data_dir": config_path.parent / "data"})
    runtime = Runtime(config)
    await runtime.start()
    try:
        sequencer: SequencerCapability = runtime.services.sequencer
        return await sequencer.get_next_id(store, key, Increment.STRONG)
    finally:
        await runtime.stop()


async def test_layotto_json_bigger_than_beside_metadata(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"grpc_config": {
        "app": {"app_id": "app1"},
        "sequencer": {"seq": {"type": "in-memory", "biggerThan": {"order": 1000},
                              "metadata": {"segmentSize": "50"}}},
    }}))
    assert await _first_id(path, "seq", "order") == 1001


async def test_yaml_bigger_than_as_json_string(tmp_path: Path) -> None:
    path = tmp_path / "pylotto.yaml"
    path.write_text(
        "app: {id: app1}\n"
        "components:\n"
        "  sequencer:\n"
        "    db:\n"
        "      type: sqlite\n"
        "      metadata: {biggerThan: '{\"order\": 41}'}\n"
    )
    assert await _first_id(path, "db", "order") == 42
