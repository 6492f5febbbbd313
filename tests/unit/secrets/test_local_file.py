import json
from pathlib import Path
from typing import Any

import pytest

from pylotto.components.base import ComponentContext
from pylotto.components.secretstores.local_file import LocalFileSecretStore, load_secrets
from pylotto.core.errors import ConfigError, NotFound
from pylotto.core.metadata import decode
from pylotto.core.registry import resolve

DOCUMENT = {
    "redisPassword": "pw",
    "connectionStrings": {"sql": "s", "mysql": {"primary": "m1"}},
    "ports": [80, 443],
    "flags": {"on": True, "ratio": 1.5, "none": None},
}


async def store(tmp_path: Path, document: Any, **metadata: str) -> LocalFileSecretStore:
    path = tmp_path / "secrets.json"
    path.write_text(json.dumps(document))
    settings = decode(LocalFileSecretStore.Settings, {"secretsFile": str(path), **metadata},
                      component="secretstores.local")
    component = LocalFileSecretStore("local", settings,
                                     ComponentContext(app_id="a", data_dir=tmp_path))
    await component.init()
    return component


async def test_nested_keys_are_flattened(tmp_path: Path) -> None:
    s = await store(tmp_path, DOCUMENT)
    assert await s.get_secret("redisPassword", {}) == {"redisPassword": "pw"}
    assert await s.get_secret("connectionStrings:sql", {}) == {"connectionStrings:sql": "s"}
    assert await s.get_secret("connectionStrings:mysql:primary", {}) == {
        "connectionStrings:mysql:primary": "m1"
    }
    assert await s.get_secret("ports:1", {}) == {"ports:1": "443"}
    assert await s.get_secret("flags:on", {}) == {"flags:on": "true"}
    assert await s.get_secret("flags:ratio", {}) == {"flags:ratio": "1.5"}
    assert await s.get_secret("flags:none", {}) == {"flags:none": ""}
    with pytest.raises(NotFound, match="secret connectionStrings not found in secret store local"):
        await s.get_secret("connectionStrings", {})


async def test_custom_separator_and_bulk(tmp_path: Path) -> None:
    s = await store(tmp_path, {"a": {"b": "1"}, "c": "2"}, nestedSeparator=".")
    assert await s.bulk_get_secret({}) == {"a.b": {"a.b": "1"}, "c": {"c": "2"}}


async def test_multi_valued_maps_top_level_keys_to_their_maps(tmp_path: Path) -> None:
    s = await store(tmp_path, DOCUMENT, multiValued="true")
    assert await s.get_secret("connectionStrings", {}) == {"sql": "s", "mysql:primary": "m1"}
    assert await s.get_secret("redisPassword", {}) == {"redisPassword": "pw"}
    assert await s.get_secret("ports", {}) == {"0": "80", "1": "443"}
    bulk = await s.bulk_get_secret({})
    assert set(bulk) == {"redisPassword", "connectionStrings", "ports", "flags"}
    with pytest.raises(NotFound):
        await s.get_secret("connectionStrings:sql", {})


async def test_returned_maps_are_copies(tmp_path: Path) -> None:
    s = await store(tmp_path, {"k": "v"})
    (await s.get_secret("k", {}))["k"] = "changed"
    assert await s.get_secret("k", {}) == {"k": "v"}


def test_duplicate_flattened_key_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="'a:b' appears twice"):
        load_secrets({"a:b": "1", "a": {"b": "2"}}, ":", False, "here")


async def test_bad_files_fail_init_with_the_path(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="expected a JSON object"):
        await store(tmp_path, ["not", "an", "object"])
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    settings = decode(LocalFileSecretStore.Settings, {"secretsFile": str(bad)}, component="x")
    component = LocalFileSecretStore("x", settings, ComponentContext("a", tmp_path))
    with pytest.raises(ConfigError, match="not valid JSON"):
        await component.init()
    settings = decode(LocalFileSecretStore.Settings, {"secretsFile": str(tmp_path / "missing")},
                      component="x")
    component = LocalFileSecretStore("x", settings, ComponentContext("a", tmp_path))
    with pytest.raises(ConfigError, match=r"missing.*cannot read"):
        await component.init()


def test_secrets_file_is_required() -> None:
    with pytest.raises(ConfigError, match="secretsFile"):
        decode(LocalFileSecretStore.Settings, {}, component="secretstores.local")


def test_both_type_names_resolve() -> None:
    assert resolve("secretstores", "local.file") is LocalFileSecretStore
    assert resolve("secretstores", "secretstores.local.file") is LocalFileSecretStore
