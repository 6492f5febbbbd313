"""pubsub components."""

ALIASES: dict[str, str] = {
    "in-memory": "pylotto.components.pubsub.memory:InMemoryPubSub",
    "redis": "pylotto.components.pubsub.redis:RedisStreamsPubSub",
    "nats": "pylotto.components.pubsub.nats:NATSJetStreamPubSub",
    "jetstream": "pylotto.components.pubsub.nats:NATSJetStreamPubSub",
}
