"""bindings components: output bindings invoked with InvokeBinding, input bindings whose
events go to the app."""

ALIASES: dict[str, str] = {
    "cron": "pylotto.components.bindings.cron:CronBinding",
    "http": "pylotto.components.bindings.http:HttpBinding",
    "localstorage": "pylotto.components.bindings.localstorage:LocalStorageBinding",
    "mqtt3": "pylotto.components.bindings.mqtt3:Mqtt3Binding",
    "mysql": "pylotto.components.bindings.mysql:MySQLBinding",
    "postgres": "pylotto.components.bindings.postgresql:PostgresBinding",
    "postgresql": "pylotto.components.bindings.postgresql:PostgresBinding",
    "rabbitmq": "pylotto.components.bindings.rabbitmq:RabbitMQBinding",
    "redis": "pylotto.components.bindings.redis:RedisBinding",
    "smtp": "pylotto.components.bindings.smtp:SmtpBinding",
}
