"""Loading API plugins from entry points (pylotto.plugins) and the example's component."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import pytest

from pylotto import plugins
from pylotto.components.base import ComponentContext
from pylotto.config.model import embedded_default
from pylotto.core import registry
from pylotto.core.errors import ConfigError
from pylotto.core.metadata import decode
from pylotto.process.runtime import Runtime
from tests.support import example_plugin


def _site(tmp_path: Path, entry: str, module: str) -> Path:
    """A folder laid out as pip installs a package: a module and its .dist-info."""
    site = tmp_path / "site"
    dist = site / "fake_plugin-2.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: fake-plugin\nVersion: 2.0\n")
    (dist / "entry_points.txt").write_text(f"[pylotto.apis]\nfake = {entry}\n")
    (site / "fake_plugin.py").write_text(module)
    return site


@pytest.fixture
def runtime() -> Runtime:
    return Runtime(embedded_default())


def test_the_example_plugin_loads_and_is_listed(runtime: Runtime) -> None:
    example_plugin.activate()
    loaded = plugins.load(runtime.services, runtime.status)
    assert list(loaded.plugins) == ["counter"]
    assert runtime.status.extended_metadata[plugins.EXTENDED_METADATA_KEY] == "counter"
    [api] = plugins.installed()
    assert (api.name, api.distribution) == ("counter", "pylotto-example 0.1.0")
    components = plugins.installed(registry.ENTRY_POINT_GROUP)
    assert [c.name for c in components] == ["state.json-file"]
    assert "state.json-file" in registry.known_types("state")


async def test_the_context_is_the_capability_layer(tmp_path: Path) -> None:
    runtime = Runtime(embedded_default().model_copy(update={"data_dir": tmp_path}))
    context = plugins.PluginContext.of(runtime.services, "p")
    await runtime.start()  # capabilities exist once the runtime has started
    try:
        assert await context.sequencer.get_next_id("in-memory", "k") >= 1
    finally:
        await runtime.stop()
    assert context.state is runtime.services.state
    assert context.sequencer is runtime.services.sequencer
    assert context.lock is runtime.services.lock and context.pubsub is runtime.services.pubsub
    assert context.app.app_id == runtime.config.app.id
    assert context.data_dir == tmp_path
    assert context.logger.name == "pylotto.plugins.p"


def test_a_plugin_that_does_not_import_is_named(
        tmp_path: Path, runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(_site(tmp_path, "fake_plugin:Plugin", "import not_there\n")))
    monkeypatch.delitem(sys.modules, "fake_plugin", raising=False)
    with pytest.raises(ConfigError) as info:
        plugins.load(runtime.services, runtime.status)
    message = info.value.message
    assert "API plugin 'fake'" in message and "fake-plugin 2.0" in message
    assert "not_there" in message


def test_an_object_that_is_not_a_plugin_is_refused(
        tmp_path: Path, runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    module = "def Plugin(context):\n    return 42\n"
    monkeypatch.syspath_prepend(str(_site(tmp_path, "fake_plugin:Plugin", module)))
    monkeypatch.delitem(sys.modules, "fake_plugin", raising=False)
    with pytest.raises(ConfigError, match=r"is not a pylotto\.plugins\.ApiPlugin"):
        plugins.load(runtime.services, runtime.status)


async def test_a_failing_start_is_named(
        tmp_path: Path, runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    module = ("from pylotto.plugins import ApiPlugin\n"
              "class Plugin(ApiPlugin):\n"
              "    async def start(self):\n"
              "        raise OSError('no quota')\n")
    monkeypatch.syspath_prepend(str(_site(tmp_path, "fake_plugin:Plugin", module)))
    monkeypatch.delitem(sys.modules, "fake_plugin", raising=False)
    loaded = plugins.load(runtime.services, runtime.status)
    with pytest.raises(ConfigError, match="API plugin 'fake' failed to start: OSError: no quota"):
        await loaded.start()


async def test_the_json_file_store_refuses_a_corrupt_file(tmp_path: Path) -> None:
    example_plugin.activate()
    cls = registry.resolve("state", "state.json-file")
    (tmp_path / "s.json").write_text("{not json")
    settings = decode(cls.Settings, {"fileName": "s.json"}, component="state.s")
    store = cls("s", settings, ComponentContext("app", tmp_path, logging.getLogger("t")))
    with pytest.raises(ConfigError, match=r"state store s: cannot use .*s\.json"):
        await store.init()
    (tmp_path / "s.json").write_text(json.dumps({"version": 0, "items": {}}))
    await store.init()
