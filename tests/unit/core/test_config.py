import json
from pathlib import Path

import pytest

from pylotto.config import model as config
from pylotto.core.errors import ConfigError


def test_embedded_default_validates_and_covers_every_capability() -> None:
    cfg = config.embedded_default()
    config.validate_components(cfg)
    covered = {spec.capability for spec in cfg.components}
    assert covered >= {"hello", "state", "pubsub", "lock", "sequencer", "configuration",
                       "secretstores", "file"}


def test_pylotto_yaml(tmp_path: Path) -> None:
    path = tmp_path / "pylotto.yaml"
    path.write_text(
        "app: {app_id: orders, port: 8000}\n"
        "listen: {layotto_grpc: 127.0.0.1:1234}\n"
        "data_dir: data\n"
        "components:\n"
        "  state:\n"
        "    db: {type: state.sqlite, metadata: {keyPrefix: appid}}\n"
    )
    cfg = config.load(path)
    assert cfg.app.id == "orders" and cfg.app.port == 8000
    assert cfg.listen.layotto_grpc == "127.0.0.1:1234"
    assert cfg.data_dir == (tmp_path / "data").resolve()
    [spec] = cfg.components
    assert (spec.capability, spec.name, spec.type) == ("state", "db", "state.sqlite")


LAYOTTO = {
    "servers": [{
        "listeners": [
            {"name": "grpc", "address": "127.0.0.1:34904", "filter_chains": [{"filters": [{
                "type": "grpc", "config": {"server_name": "runtime", "grpc_config": {
                    "app": {"app_id": "app1", "grpc_callback_port": 9999},
                    "hellos": {"quick_start_demo": {"type": "helloworld", "hello": "greeting"}},
                    "state": {"state_demo": {"type": "in-memory", "metadata": {}}},
                    "pub_subs": {"pub_subs_demo": {"type": "in-memory",
                                                   "metadata": {"consumerID": "1"}}},
                    "sequencer": {"sequencer_demo": {"type": "in-memory",
                                                     "biggerThan": {"k": 10}}},
                    "config_store": {"config_demo": {"type": "in-memory"}},
                    "rpcs": {"mosn": {"config": {}}},
                }}}]}]},
            {"name": "actuator", "address": "127.0.0.1:34999",
             "stream_filters": [{"type": "actuator_filter"}]},
        ]
    }]
}


def test_layotto_json_config_is_accepted_as_is(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(LAYOTTO))
    cfg = config.load(path)
    assert cfg.app.id == "app1" and cfg.app.grpc_callback_port == 9999
    assert cfg.listen.layotto_grpc == "127.0.0.1:34904"
    assert cfg.listen.actuator == "127.0.0.1:34999"
    by_name = {s.name: s for s in cfg.components}
    assert by_name["pub_subs_demo"].capability == "pubsub"
    assert by_name["config_demo"].capability == "configuration"
    assert by_name["quick_start_demo"].metadata["hello"] == "greeting"
    assert by_name["sequencer_demo"].metadata["biggerThan"] == {"k": 10}


def test_unknown_type_error_names_file_component_and_suggestion(tmp_path: Path) -> None:
    path = tmp_path / "pylotto.yaml"
    path.write_text("components:\n  state:\n    mine: {type: in-memroy}\n")
    with pytest.raises(ConfigError) as info:
        config.load(path)
    message = info.value.message
    assert str(path) in message and "state.mine" in message
    assert "did you mean 'in-memory'" in message


def test_bad_metadata_names_the_key(tmp_path: Path) -> None:
    path = tmp_path / "pylotto.yaml"
    path.write_text("components:\n  state:\n    s: {type: in-memory, metadata: "
                    "{ttlInSeconds: soon}}\n")
    with pytest.raises(ConfigError, match="ttlInSeconds"):
        config.load(path)


def test_unknown_section_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "pylotto.yaml"
    path.write_text("components:\n  states: {}\n")
    with pytest.raises(ConfigError, match="unknown section 'states'"):
        config.load(path)
