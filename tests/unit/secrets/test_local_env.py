from pathlib import Path

import pytest

from pylotto.capabilities.base import ComponentSet, RuntimeContext
from pylotto.capabilities.secrets import SecretsCapability
from pylotto.components.base import ComponentContext
from pylotto.components.secretstores.base import SecretStore
from pylotto.components.secretstores.local_env import LocalEnvSecretStore
from pylotto.config.model import AppConfig
from pylotto.core.errors import (
    ComponentNotFound,
    InvalidArgument,
    NotConfigured,
    NotFound,
    PermissionDenied,
)
from pylotto.core.metadata import decode
from pylotto.core.registry import resolve


def env_store(tmp_path: Path, **metadata: str) -> LocalEnvSecretStore:
    settings = decode(LocalEnvSecretStore.Settings, metadata, component="secretstores.env")
    return LocalEnvSecretStore("env", settings, ComponentContext(app_id="a", data_dir=tmp_path))


def secrets(tmp_path: Path, stores: dict[str, SecretStore]) -> SecretsCapability:
    return SecretsCapability(ComponentSet("secret store", stores),
                             RuntimeContext(AppConfig(app_id="a"), tmp_path))


async def test_reads_variables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYLOTTO_TEST_DB_PASSWORD", "s3cret")
    store = env_store(tmp_path)
    with pytest.raises(PermissionDenied, match="reserved"):
        await store.get_secret("PYLOTTO_TEST_DB_PASSWORD", {})
    monkeypatch.setenv("MYAPP_DB_PASSWORD", "s3cret")
    assert await store.get_secret("MYAPP_DB_PASSWORD", {}) == {"MYAPP_DB_PASSWORD": "s3cret"}
    with pytest.raises(NotFound, match="no environment variable MYAPP_NOPE"):
        await store.get_secret("MYAPP_NOPE", {})


async def test_prefix_is_added_on_get_and_stripped_in_bulk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MYAPP_DB", "db-pass")
    monkeypatch.setenv("MYAPP_API", "api-key")
    monkeypatch.setenv("MYAPP_", "empty-name-is-skipped")
    monkeypatch.setenv("OTHER_DB", "not-mine")
    store = env_store(tmp_path, prefix="MYAPP_")
    assert await store.get_secret("DB", {}) == {"DB": "db-pass"}
    bulk = await store.bulk_get_secret({})
    assert bulk == {"DB": {"DB": "db-pass"}, "API": {"API": "api-key"}}


async def test_reserved_variables_never_leave(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DAPR_API_TOKEN", "t")
    monkeypatch.setenv("APP_API_TOKEN", "t")
    store = env_store(tmp_path)
    for name in ("DAPR_API_TOKEN", "APP_API_TOKEN", "dapr_api_token"):
        with pytest.raises(PermissionDenied):
            await store.get_secret(name, {})
    bulk = await store.bulk_get_secret({})
    assert "DAPR_API_TOKEN" not in bulk and "APP_API_TOKEN" not in bulk
    assert not any(name.startswith("PYLOTTO_") for name in bulk)


async def test_capability_rules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MYAPP_K", "v")
    cap = secrets(tmp_path, {"env": env_store(tmp_path)})
    assert await cap.get_secret("env", "MYAPP_K", {}) == {"MYAPP_K": "v"}
    assert (await cap.get_bulk_secret("env", {}))["MYAPP_K"] == {"MYAPP_K": "v"}
    with pytest.raises(InvalidArgument, match="secret key is empty"):
        await cap.get_secret("env", "", {})
    with pytest.raises(ComponentNotFound, match="secret store nope is not found"):
        await cap.get_secret("nope", "k", {})
    with pytest.raises(NotConfigured, match="secret store is not configured"):
        await secrets(tmp_path, {}).get_bulk_secret("env", {})


def test_both_type_names_resolve() -> None:
    assert resolve("secretstores", "local.env") is LocalEnvSecretStore
    assert resolve("secretstores", "secretstores.local.env") is LocalEnvSecretStore
