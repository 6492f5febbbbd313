"""sequencer components: monotonically increasing ids per key."""

ALIASES: dict[str, str] = {
    "in-memory": "pylotto.components.sequencer.memory:MemorySequencer",
    "sqlite": "pylotto.components.sequencer.sqlite:SqliteSequencer",
    "postgresql": "pylotto.components.sequencer.postgresql:PostgresSequencer",
    "redis": "pylotto.components.sequencer.redis:RedisSequencer",
    "mysql": "pylotto.components.sequencer.mysql:MySQLSequencer",
    "etcd": "pylotto.components.sequencer.etcd:EtcdSequencer",
    "zookeeper": "pylotto.components.sequencer.zookeeper:ZookeeperSequencer",
    "snowflake": "pylotto.components.sequencer.snowflake:SnowflakeSequencer",
}
