"""``pylotto check-config`` on Redis Sentinel and Cluster metadata (issue 22): Dapr's keys are
known and their rules checked, not "unknown metadata key ignored"."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.test_check_config_manifests import check, manifest, write

pytestmark = pytest.mark.e2e


def redis(kind: str, name: str, **metadata: str) -> dict[str, object]:
    return manifest("Component", name, {"type": kind, "version": "v1", "metadata": [
        {"name": key, "value": value} for key, value in metadata.items()]})


def test_sentinel_and_cluster_metadata_is_known(tmp_path: Path) -> None:
    path = write(tmp_path, "ha.yaml",
                 redis("state.redis", "statestore", redisHost="10.0.0.1:26379,10.0.0.2:26379",
                       failover="true", sentinelMasterName="mymaster",
                       sentinelPassword="s", sentinelUsername="u", waitReplicas="1"),
                 redis("pubsub.redis", "pubsub", redisHost="10.0.0.1:7000,10.0.0.2:7000",
                       redisType="cluster"),
                 redis("lock.redis", "lock", redisHost="10.0.0.1:7000", redisType="Cluster"))
    result = check(path)
    assert (result.returncode, result.stderr) == (0, "")
    assert "ok — 3 Component" in result.stdout


def test_each_rule_is_an_error_naming_the_component(tmp_path: Path) -> None:
    path = write(tmp_path, "bad.yaml",
                 redis("state.redis", "nomaster", redisHost="s1:26379", failover="true"),
                 redis("state.redis", "typo", redisHost="n1:7000", redisType="clustr"),
                 redis("lock.redis", "hosts", redisHost="n1:7000,n2:7000"),
                 redis("sequencer.redis", "db", redisHost="n1:7000", redisType="cluster",
                       redisDB="2"),
                 redis("state.redis", "both", redisHost="s1:26379", failover="true",
                       sentinelMasterName="m", redisType="cluster"),
                 redis("state.redis", "wait", redisHost="n1:7000", waitReplicas="many"),
                 redis("pubsub.redis", "lonely", redisHost="r:6379",
                       sentinelMasterName="m"))
    result = check(path)
    assert result.returncode == 1
    errors = result.stderr
    for name, message in (
            ("nomaster", "failover: true needs sentinelMasterName"),
            ("typo", "metadata key 'redisType' = 'clustr'"),
            ("hosts", "several hosts in redisHost need redisType: cluster"),
            ("db", "redisType: cluster has only database 0"),
            ("both", "failover: true with redisType: cluster"),
            ("wait", "metadata key 'waitReplicas' = 'many'"),
            ("lonely", "need failover: true")):
        line = next((ln for ln in errors.splitlines() if f".{name}:" in ln), "")
        assert message in line, (name, errors)
    assert "refused — 7 error(s)" in result.stdout
