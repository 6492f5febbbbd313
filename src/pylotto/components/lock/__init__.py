"""lock components: non-blocking, lease-based distributed locks."""

ALIASES: dict[str, str] = {
    "in-memory": "pylotto.components.lock.memory:MemoryLockStore",
    "postgresql": "pylotto.components.lock.postgresql:PostgresLockStore",
}
