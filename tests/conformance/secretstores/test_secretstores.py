"""The secret store conformance suite: every test runs against every case of cases.yaml.

Tests go through the capability layer (what both facades call). What they assert is what Dapr's
``secretstores.local.file`` and ``secretstores.local.env`` do too: where pylotto is stricter
(a missing or reserved environment variable is an error here, an empty value in Dapr; arrays at
the top level of a multi-valued file are kept here, dropped there) the unit tests
(tests/unit/secrets) hold pylotto's rule and this suite says nothing.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from pylotto.capabilities.base import ComponentSet, RuntimeContext
from pylotto.capabilities.secrets import SecretsCapability
from pylotto.components.secretstores.base import Secret, SecretStore
from pylotto.config.model import AppConfig
from pylotto.core.errors import NotFound
from pylotto.proto.layotto import runtime_pb2, runtime_pb2_grpc
from tests.conformance.cases import (
    RUN_PREFIX,
    Case,
    assert_declares_exactly,
    build,
    load_cases,
)
from tests.conformance.conftest import STORE, StartSidecar

pytestmark = pytest.mark.timeout(120)

DOCUMENT: dict[str, Any] = json.loads((Path(__file__).parent / "secrets.json").read_text())
"""What the file cases read (secrets.json next to cases.yaml)."""

VARIABLES = {"redisPassword": "pw-1", "apiKey": "k-2"}
"""What the environment cases read: each set as variable ``<RUN_PREFIX>_<name>``."""


def cases_where(trait: str) -> list[Any]:
    return load_cases("secretstores", where=lambda c: trait in c.traits)


@pytest.fixture(params=load_cases("secretstores"))
def case(request: pytest.FixtureRequest) -> Case:
    chosen: Case = request.param
    return chosen


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The run's variables, set for every test (sidecars started by a test inherit them)."""
    for name, value in VARIABLES.items():
        monkeypatch.setenv(f"{RUN_PREFIX}_{name}", value)


def separator(case: Case) -> str:
    return str(case.metadata.get("nestedSeparator") or ":")


def flattened(value: Any, sep: str, path: tuple[str, ...] = ()) -> Iterator[tuple[str, str]]:
    """Every string leaf under ``value`` with its path joined by ``sep`` (secrets.json holds
    only strings: Dapr spells other leaves its own way)."""
    if isinstance(value, dict):
        for key, child in value.items():
            yield from flattened(child, sep, (*path, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from flattened(child, sep, (*path, str(index)))
    else:
        yield sep.join(path), value


def expected(case: Case) -> dict[str, Secret]:
    """The secrets the case's store holds, by name (for an unprefixed environment store: those
    among the whole environment that this run set)."""
    sep = separator(case)
    if "multi-valued" in case.traits:
        return {name: dict(flattened(value, sep)) if isinstance(value, dict) else {name: value}
                for name, value in DOCUMENT.items()}
    if "nested" in case.traits:
        return {key: {key: value} for key, value in flattened(DOCUMENT, sep)}
    names = (VARIABLES if "prefixed" in case.traits
             else {f"{RUN_PREFIX}_{name}": value for name, value in VARIABLES.items()})
    return {name: {name: value} for name, value in names.items()}


def capability_over(store: SecretStore) -> SecretsCapability:
    return SecretsCapability(ComponentSet("secret store", {STORE: store}),
                             RuntimeContext(AppConfig(app_id="conformance"),
                                            Path("/nonexistent")))


@pytest.fixture
async def store(case: Case, tmp_path: Path) -> AsyncIterator[SecretStore]:
    async with build(case, tmp_path) as component:
        assert isinstance(component, SecretStore)
        yield component


@pytest.fixture
def secrets(store: SecretStore) -> SecretsCapability:
    return capability_over(store)


async def test_declares_exactly_the_case_features(case: Case, tmp_path: Path) -> None:
    async with build(case, tmp_path) as component:
        assert_declares_exactly(case, component)


async def test_get_returns_each_secret(case: Case, secrets: SecretsCapability) -> None:
    for name, secret in expected(case).items():
        assert await secrets.get_secret(STORE, name, {}) == secret, name


async def test_bulk_get_returns_every_secret(case: Case, secrets: SecretsCapability) -> None:
    bulk = await secrets.get_bulk_secret(STORE, {})
    if "environment" in case.traits and "prefixed" not in case.traits:
        assert {name: bulk.get(name) for name in expected(case)} == expected(case)
    else:
        assert bulk == expected(case)


@pytest.mark.parametrize("case", cases_where("file"), indirect=True)
async def test_a_missing_secret_is_not_found(secrets: SecretsCapability) -> None:
    """Dapr's file store errors too ("secret <name> not found"); its environment store answers
    an empty value, so the environment cases are not asked (tests/unit/secrets hold pylotto's
    NotFound)."""
    with pytest.raises(NotFound, match="secret no-such-secret not found"):
        await secrets.get_secret(STORE, "no-such-secret", {})


@pytest.mark.parametrize("case", cases_where("nested"), indirect=True)
async def test_nested_keys_are_joined_by_the_separator(
    case: Case, secrets: SecretsCapability
) -> None:
    sep = separator(case)
    deep = f"connectionStrings{sep}mysql{sep}primary"
    assert await secrets.get_secret(STORE, deep, {}) == {deep: "m-4"}
    item = f"hosts{sep}web{sep}1"
    assert await secrets.get_secret(STORE, item, {}) == {item: "b.example"}
    for not_a_leaf in ("connectionStrings", f"hosts{sep}web"):
        with pytest.raises(NotFound):
            await secrets.get_secret(STORE, not_a_leaf, {})
    if sep != ":":
        with pytest.raises(NotFound):
            await secrets.get_secret(STORE, "connectionStrings:sql", {})


@pytest.mark.parametrize("case", cases_where("multi-valued"), indirect=True)
async def test_a_multi_valued_secret_is_the_map_below_its_key(
    secrets: SecretsCapability,
) -> None:
    assert await secrets.get_secret(STORE, "connectionStrings", {}) == {
        "sql": "s-3", "mysql:primary": "m-4"}
    assert await secrets.get_secret(STORE, "hosts", {}) == {
        "web:0": "a.example", "web:1": "b.example"}
    assert await secrets.get_secret(STORE, "redisPassword", {}) == {"redisPassword": "pw-1"}
    with pytest.raises(NotFound):
        await secrets.get_secret(STORE, "connectionStrings:sql", {})


@pytest.mark.parametrize("case", cases_where("environment"), indirect=True)
async def test_variables_are_read_at_each_call(
    case: Case, secrets: SecretsCapability, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = f"{RUN_PREFIX}_later" if "prefixed" not in case.traits else "later"
    monkeypatch.setenv(f"{RUN_PREFIX}_later", "set after the start")
    assert await secrets.get_secret(STORE, name, {}) == {name: "set after the start"}
    assert (await secrets.get_bulk_secret(STORE, {}))[name] == {name: "set after the start"}


@pytest.mark.parametrize("case", cases_where("environment"), indirect=True)
async def test_runtime_variables_are_never_listed(
    secrets: SecretsCapability, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("APP_API_TOKEN", "app-token")
    monkeypatch.setenv(f"DAPR_{RUN_PREFIX}_TOKEN", "dapr-token")
    bulk = await secrets.get_bulk_secret(STORE, {})
    assert not any(name.upper() == "APP_API_TOKEN" or name.upper().startswith("DAPR_")
                   for name in bulk)
    assert not {"app-token", "dapr-token"} & {v for s in bulk.values() for v in s.values()}


@pytest.mark.e2e
def test_a_sidecar_serves_the_secrets(case: Case, start_sidecar: StartSidecar) -> None:
    stub = runtime_pb2_grpc.RuntimeStub(start_sidecar(case).channel())
    for name, secret in expected(case).items():
        reply = stub.GetSecret(runtime_pb2.GetSecretRequest(store_name=STORE, key=name),
                               timeout=15)
        assert dict(reply.data) == secret
    bulk = stub.GetBulkSecret(runtime_pb2.GetBulkSecretRequest(store_name=STORE), timeout=15)
    got = {name: dict(secret.secrets) for name, secret in bulk.data.items()}
    assert {name: got.get(name) for name in expected(case)} == expected(case)
