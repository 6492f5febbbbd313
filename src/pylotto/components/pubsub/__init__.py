"""pubsub components."""

ALIASES: dict[str, str] = {
    "in-memory": "pylotto.components.pubsub.memory:InMemoryPubSub",
    "redis": "pylotto.components.pubsub.redis:RedisStreamsPubSub",
    "rabbitmq": "pylotto.components.pubsub.rabbitmq:RabbitMQPubSub",
    "mqtt": "pylotto.components.pubsub.mqtt:MQTTPubSub",
    "mqtt3": "pylotto.components.pubsub.mqtt:MQTTPubSub",
    "nats": "pylotto.components.pubsub.nats:NATSJetStreamPubSub",
    "jetstream": "pylotto.components.pubsub.nats:NATSJetStreamPubSub",
}
