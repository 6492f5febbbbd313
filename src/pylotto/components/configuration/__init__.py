"""configuration components: grouped, labelled configuration items with change subscriptions."""

ALIASES: dict[str, str] = {
    "in-memory": "pylotto.components.configuration.memory:MemoryConfigurationStore",
    "postgresql": "pylotto.components.configuration.postgresql:PostgresConfigurationStore",
    "redis": "pylotto.components.configuration.redis:RedisConfigurationStore",
    "etcd": "pylotto.components.configuration.etcd:EtcdConfigurationStore",
}
