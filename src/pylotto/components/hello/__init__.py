"""hello components: Layotto's SayHello demo service."""

ALIASES: dict[str, str] = {
    "helloworld": "pylotto.components.hello.helloworld:HelloWorld",
}
