"""pubsub components."""

ALIASES: dict[str, str] = {
    "in-memory": "pylotto.components.pubsub.memory:InMemoryPubSub",
}
