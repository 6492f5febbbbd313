"""bindings components: output bindings invoked with InvokeBinding."""

ALIASES: dict[str, str] = {
    "http": "pylotto.components.bindings.http:HttpBinding",
}
