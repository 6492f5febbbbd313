"""state components: key/value stores with etags, TTL and transactions."""

ALIASES: dict[str, str] = {
    "in-memory": "pylotto.components.state.memory:MemoryStateStore",
    "sqlite": "pylotto.components.state.sqlite:SqliteStateStore",
    "postgresql": "pylotto.components.state.postgresql:PostgresStateStore",
    "postgresql/v2": "pylotto.components.state.postgresql_v2:PostgresV2StateStore",
    "redis": "pylotto.components.state.redis:RedisStateStore",
    "mysql": "pylotto.components.state.mysql:MySQLStateStore",
    "etcd": "pylotto.components.state.etcd:EtcdStateStore",
    "memcached": "pylotto.components.state.memcached:MemcachedStateStore",
    "zookeeper": "pylotto.components.state.zookeeper:ZookeeperStateStore",
}
