"""sequencer components: monotonically increasing ids per key."""

ALIASES: dict[str, str] = {
    "in-memory": "pylotto.components.sequencer.memory:MemorySequencer",
    "sqlite": "pylotto.components.sequencer.sqlite:SqliteSequencer",
    "postgresql": "pylotto.components.sequencer.postgresql:PostgresSequencer",
}
