"""lock components: non-blocking, lease-based distributed locks."""

ALIASES: dict[str, str] = {
    "in-memory": "pylotto.components.lock.memory:MemoryLockStore",
    "postgresql": "pylotto.components.lock.postgresql:PostgresLockStore",
    "redis": "pylotto.components.lock.redis:RedisLockStore",
    "etcd": "pylotto.components.lock.etcd:EtcdLockStore",
    "zookeeper": "pylotto.components.lock.zookeeper:ZookeeperLockStore",
    "redis_cluster": "pylotto.components.lock.redis_cluster:RedisClusterLockStore",
    "sqlite": "pylotto.components.lock.sqlite:SqliteLockStore",
}
