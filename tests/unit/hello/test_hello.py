from pathlib import Path

import pytest

from pylotto.capabilities.base import ComponentSet, RuntimeContext
from pylotto.capabilities.hello import HelloCapability
from pylotto.components.base import ComponentContext
from pylotto.components.hello.base import HelloService
from pylotto.components.hello.helloworld import HelloWorld
from pylotto.config.model import AppConfig
from pylotto.core.errors import ComponentNotFound, InvalidArgument, NotConfigured
from pylotto.core.metadata import decode
from pylotto.core.registry import resolve


def make(tmp_path: Path, metadata: dict[str, str]) -> HelloWorld:
    settings = decode(HelloWorld.Settings, metadata, component="hello.demo")
    return HelloWorld("demo", settings, ComponentContext(app_id="app", data_dir=tmp_path))


def capability(tmp_path: Path, services: dict[str, HelloService]) -> HelloCapability:
    context = RuntimeContext(AppConfig(app_id="app"), tmp_path)
    return HelloCapability(ComponentSet("hello service", services), context)


async def test_greets_with_the_configured_word(tmp_path: Path) -> None:
    hello = make(tmp_path, {"hello": "hi"})
    assert await hello.hello("layotto") == "hi, layotto"
    assert await hello.hello("") == "hi"


async def test_default_greeting_is_greeting(tmp_path: Path) -> None:
    assert await make(tmp_path, {}).hello("bob") == "greeting, bob"


def test_both_type_names_resolve() -> None:
    assert resolve("hello", "helloworld") is HelloWorld
    assert resolve("hello", "hello.helloworld") is HelloWorld


async def test_capability_picks_the_service_by_name(tmp_path: Path) -> None:
    cap = capability(tmp_path, {"a": make(tmp_path, {"hello": "A"}),
                                "b": make(tmp_path, {"hello": "B"})})
    assert await cap.say_hello("b", "x") == "B, x"
    with pytest.raises(ComponentNotFound, match="hello service c is not found"):
        await cap.say_hello("c", "x")
    with pytest.raises(InvalidArgument):
        await cap.say_hello("", "x")


async def test_no_service_configured(tmp_path: Path) -> None:
    with pytest.raises(NotConfigured, match="hello service is not configured"):
        await capability(tmp_path, {}).say_hello("demo", "x")
