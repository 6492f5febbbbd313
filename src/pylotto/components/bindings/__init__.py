"""bindings components: output bindings invoked with InvokeBinding, input bindings whose
events go to the app."""

ALIASES: dict[str, str] = {
    "cron": "pylotto.components.bindings.cron:CronBinding",
    "http": "pylotto.components.bindings.http:HttpBinding",
}
