"""Dapr component manifests: parsing, scopes, secretKeyRef, errors naming the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from pylotto.config.manifests import load_components
from pylotto.config.model import SecretRef
from pylotto.core.errors import ConfigError

STATE = """\
apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: statestore
spec:
  type: state.sqlite
  version: v1
  metadata:
  - name: tableName
    value: orders
  - name: cleanupIntervalInSeconds
    value: 60
  - name: connectionString
    secretKeyRef: {name: db, key: path}
auth:
  secretStore: files
---
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: locks}
spec:
  type: lock.in-memory
  metadata: []
scopes: [billing]
---
apiVersion: dapr.io/v2alpha1
kind: Subscription
metadata: {name: orders-sub}
spec: {pubsubname: pubsub, topic: orders, routes: {default: /orders}}
"""


def write(tmp_path: Path, text: str, name: str = "components.yaml") -> Path:
    (tmp_path / name).write_text(text)
    return tmp_path


def test_components_with_types_versions_values_and_secret_refs(tmp_path: Path) -> None:
    [spec] = load_components([write(tmp_path, STATE)], app_id="orders")
    assert (spec.name, spec.capability, spec.type, spec.version) == (
        "statestore", "state", "state.sqlite", "v1")
    assert spec.metadata == {"tableName": "orders", "cleanupIntervalInSeconds": "60",
                             "keyPrefix": "appid"}
    assert spec.secrets == {"connectionString": SecretRef(store="files", name="db", key="path")}


@pytest.mark.parametrize(("entry", "expected"), [
    ("", "appid"),  # daprd's default strategy
    ("  - name: keyPrefix\n    value: none\n", "none"),
    ("  - name: KEYPREFIX\n    value: name\n", None),  # given, under any case: kept as given
])
def test_a_state_store_of_a_manifest_prefixes_with_the_app_id_unless_told(
        tmp_path: Path, entry: str, expected: str | None) -> None:
    text = ("apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {name: s}\n"
            "spec:\n  type: state.redis\n  metadata:\n  - name: redisHost\n"
            "    value: localhost:6379\n" + entry +
            "---\napiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {name: l}\n"
            "spec: {type: lock.redis, metadata: []}\n")
    state, lock = load_components([write(tmp_path, text)], app_id="orders")
    assert state.metadata.get("keyPrefix") == expected
    assert "keyPrefix" not in lock.metadata  # lock and sequencer default to appid anyway


def test_scopes_select_the_app(tmp_path: Path) -> None:
    specs = load_components([write(tmp_path, STATE)], app_id="billing")
    assert [s.name for s in specs] == ["statestore", "locks"]


def test_every_yaml_file_of_every_folder(tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()
    (one / "a.yml").write_text(
        "kind: Component\nmetadata: {name: a}\nspec: {type: pubsub.in-memory}\n")
    (two / "b.yaml").write_text(
        "kind: Component\nmetadata: {name: b}\nspec: {type: secretstores.local.env}\n")
    (two / "ignored.txt").write_text("not yaml: [")
    specs = load_components([one, two], app_id="")
    assert [(s.name, s.capability) for s in specs] == [("a", "pubsub"), ("b", "secretstores")]


@pytest.mark.parametrize(("text", "message"), [
    ("kind: Component\nspec: {type: state.redis}\n", "without metadata.name"),
    ("kind: Component\nmetadata: {name: x}\nspec: {}\n", "missing spec.type"),
    ("kind: Component\nmetadata: {name: x}\nspec: {type: kafka}\n", "names no capability"),
    ("kind: Component\nmetadata: {name: x}\nspec:\n  type: state.redis\n  metadata:\n"
     "  - name: redisPassword\n    secretKeyRef: {name: s}\n", "auth.secretStore"),
    ("kind: Component\nmetadata: {name: x}\nspec: {type: state.redis}\n---\n- a list\n",
     "must be a mapping"),
])
def test_errors_name_the_file_and_the_problem(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        load_components([write(tmp_path, text, "bad.yaml")], app_id="")
    assert "bad.yaml" in info.value.message


def test_a_missing_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a directory"):
        load_components([tmp_path / "nope"], app_id="")


SUBSCRIPTIONS = """\
apiVersion: dapr.io/v2alpha1
kind: Subscription
metadata: {name: orders}
spec:
  pubsubname: bus
  topic: orders
  routes:
    rules:
    - {match: 'event.type == "big"', path: /big}
    default: /orders
  deadLetterTopic: poison
  bulkSubscribe: {enabled: true, maxMessagesCount: 50}
  metadata: {rawPayload: true}
scopes: [checkout]
---
apiVersion: dapr.io/v1alpha1
kind: Subscription
metadata: {name: legacy}
spec: {pubsubname: bus, topic: payments, route: /pay, bulkSubscribe: {enabled: false}}
"""


def test_subscriptions_in_both_forms(tmp_path: Path) -> None:
    from pylotto.config.manifests import load

    components, subscriptions = load([write(tmp_path, SUBSCRIPTIONS)], app_id="checkout")
    assert components == []
    orders, legacy = subscriptions
    assert (orders.pubsub_name, orders.topic, orders.rules, orders.default_path,
            orders.dead_letter_topic, orders.metadata) == (
        "bus", "orders", [('event.type == "big"', "/big")], "/orders", "poison",
        {"rawPayload": "true"})
    assert (legacy.topic, legacy.default_path, legacy.rules) == ("payments", "/pay", [])
    assert orders.bulk_subscribe == (50, 1000), "Dapr's default maxAwaitDurationMs"
    assert legacy.bulk_subscribe is None
    _, scoped = load([write(tmp_path, SUBSCRIPTIONS)], app_id="someone-else")
    assert [s.name for s in scoped] == ["legacy"]


def test_a_subscription_needs_pubsub_and_topic(tmp_path: Path) -> None:
    from pylotto.config.manifests import load

    text = "kind: Subscription\nmetadata: {name: s}\nspec: {topic: t}\n"
    with pytest.raises(ConfigError, match=r"pubsubname and spec\.topic"):
        load([write(tmp_path, text, "bad.yaml")], app_id="")


def test_a_resiliency_manifest(tmp_path: Path) -> None:
    from pylotto.config.manifests import load_resiliency

    text = ("apiVersion: dapr.io/v1alpha1\nkind: Resiliency\nmetadata: {name: r}\nspec:\n"
            "  policies: {timeouts: {quick: 2s}}\n"
            "  targets: {apps: {billing: {timeout: quick}}}\n")
    spec = load_resiliency([write(tmp_path, text)], app_id="any")
    assert spec is not None and spec.policies.timeouts == {"quick": 2.0}
    assert spec.targets.apps["billing"].timeout == "quick"
    bad = text.replace("timeout: quick", "timeout: missing")
    with pytest.raises(ConfigError, match="no policy named 'missing'"):
        load_resiliency([write(tmp_path, bad, "bad.yaml")], app_id="any")
