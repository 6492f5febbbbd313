"""pubsub components."""

ALIASES: dict[str, str] = {
    "in-memory": "pylotto.components.pubsub.memory:InMemoryPubSub",
    "redis": "pylotto.components.pubsub.redis:RedisStreamsPubSub",
    "rabbitmq": "pylotto.components.pubsub.rabbitmq:RabbitMQPubSub",
    "nats": "pylotto.components.pubsub.nats:NATSJetStreamPubSub",
    "jetstream": "pylotto.components.pubsub.nats:NATSJetStreamPubSub",
}
