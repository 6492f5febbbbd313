"""``helloworld``: answers ``"<hello>, <name>"``, or just ``"<hello>"`` when the name is empty."""

from __future__ import annotations

from pydantic import Field

from pylotto.components.base import ComponentContext
from pylotto.components.hello.base import HelloService
from pylotto.core.metadata import ComponentSettings


class HelloWorldSettings(ComponentSettings):
    hello: str = Field("greeting", alias="hello")
    """The greeting; Layotto configs put it beside ``metadata``, the loader merges it in."""


class HelloWorld(HelloService):
    Settings = HelloWorldSettings

    def __init__(self, name: str, settings: ComponentSettings, context: ComponentContext) -> None:
        super().__init__(name, settings, context)
        if not isinstance(settings, HelloWorldSettings):
            raise TypeError(f"{type(self).__name__} needs HelloWorldSettings")
        self.greeting = settings.hello

    async def hello(self, name: str) -> str:
        return f"{self.greeting}, {name}" if name else self.greeting
