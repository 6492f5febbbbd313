"""scripts/layotto_configs.py on a small Layotto-shaped git repository of the test's own (the
real one is a mirror CI does not have): every JSON config under configs/ and docker/*/ read
with git show, each accepted (its components and their servers) or refused by name."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "layotto_configs.py"


@pytest.fixture(scope="module")
def script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("layotto_configs", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["layotto_configs"] = module
    spec.loader.exec_module(module)
    return module


def _layotto(grpc_config: dict[str, Any]) -> str:
    return json.dumps({"servers": [{"listeners": [{
        "name": "grpc", "address": "127.0.0.1:34904", "bind_port": True,
        "filter_chains": [{"filters": [{"type": "grpc", "config": {
            "server_name": "runtime", "grpc_config": grpc_config}}]}]}]}],
        "dynamic_resources": {}})


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    files = {
        "configs/config_redis.json": _layotto({
            "hellos": {"helloworld": {"type": "helloworld", "hello": "greeting"}},
            "state": {"state_demo": {"type": "redis", "metadata": {
                "redisHost": "localhost:6380"}}}}),
        "configs/config_apollo.json": _layotto({
            "config_store": {"config_demo": {"type": "apollo", "address": ["http://x"]}}}),
        "configs/secret/secrets.json": json.dumps({"a": "b"}),
        "docker/layotto-etcd/etcd_config.json": _layotto({
            "sequencer": {"sequencer_demo": {"type": "etcd", "metadata": {
                "endpoints": "localhost:2379"}}}}),
        "docker/layotto-etcd/deep/ignored.json": _layotto({}),
        "cmd/other.json": _layotto({}),
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    for command in (["init", "-q"], ["add", "-A"],
                    ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "configs"]):
        subprocess.run(["git", "-C", str(tmp_path), *command], check=True)
    return tmp_path


def test_every_config_is_accepted_or_refused_by_name(script: ModuleType, repo: Path) -> None:
    verdicts = {v.path: v for v in script.check_all(repo, "HEAD")}
    assert sorted(verdicts) == ["configs/config_apollo.json", "configs/config_redis.json",
                                "configs/secret/secrets.json",
                                "docker/layotto-etcd/etcd_config.json"]
    redis = verdicts["configs/config_redis.json"]
    assert redis.accepted and redis.servers_run_here
    assert redis.components == [("hello", "helloworld", "helloworld", ""),
                                ("state", "state_demo", "redis", "redis")]
    assert any("dynamic_resources" in w for w in redis.warnings)
    apollo = verdicts["configs/config_apollo.json"]
    assert not apollo.accepted and "unknown configuration component type 'apollo'" in \
        apollo.message
    assert verdicts["configs/secret/secrets.json"].skipped
    assert verdicts["docker/layotto-etcd/etcd_config.json"].components == [
        ("sequencer", "sequencer_demo", "etcd", "etcd")]

    table = script.markdown(list(verdicts.values()))
    assert ("| `configs/config_apollo.json` | refused | configuration.config_demo: unknown "
            "configuration component type 'apollo' | |") in table
    assert "| `configs/config_redis.json` | accepted (warned: dynamic_resources) |" in table
    assert script.summary(list(verdicts.values())) == (
        "3 configs (1 other JSON files skipped): 2 accepted, 2 of them with every server "
        "running here; 1 refused")


def test_server_of_a_type(script: ModuleType) -> None:
    assert script.server_of("state.redis") == "redis"
    assert script.server_of("configuration.nacos") == "nacos"
    assert script.server_of("in-memory") == ""
    assert "nacos" not in script.SERVERS_HERE


def test_localize_moves_listeners_and_servers_here(script: ModuleType, tmp_path: Path) -> None:
    raw = json.loads(_layotto({"state": {"s": {"type": "redis", "metadata": {
        "redisHost": "redis:6379"}}}, "lock": {"l": {"type": "redis", "metadata": {
            "redisHost": "localhost:6380"}}}}))
    raw["servers"][0]["listeners"].append({"name": "actuator", "address": "127.0.0.1:34999"})
    raw["metrics"] = {"sinks": [{"type": "prometheus", "config": {"port": 34903}}]}
    local, target, actuator = script.localize(raw, tmp_path)
    grpc_config = local["servers"][0]["listeners"][0]["filter_chains"][0]["filters"][0][
        "config"]["grpc_config"]
    assert grpc_config["state"]["s"]["metadata"]["redisHost"] == "127.0.0.1:6379"
    assert grpc_config["lock"]["l"]["metadata"]["redisHost"] == "localhost:6379"
    assert target != "127.0.0.1:34904" and target.startswith("127.0.0.1:")
    assert actuator.startswith("http://127.0.0.1:") and not actuator.endswith(":34999")
    assert local["metrics"]["sinks"][0]["config"]["port"] != 34903


def test_start_reports_ready_or_why_not(script: ModuleType, tmp_path: Path) -> None:
    good = tmp_path / "good.json"
    good.write_text(_layotto({"hellos": {"h": {"type": "helloworld", "hello": "hi"}}}))
    (tmp_path / "run-good").mkdir()
    assert script.start(good, tmp_path / "run-good", tmp_path) == "ready"
    bad = tmp_path / "bad.json"
    bad.write_text(_layotto({"secret_store": {"s": {"type": "local.file", "metadata": {
        "secretsFile": "missing.json"}}}}))
    (tmp_path / "run-bad").mkdir()
    state = script.start(bad, tmp_path / "run-bad", tmp_path)
    assert state.startswith("exited: ") and "missing.json" in state
