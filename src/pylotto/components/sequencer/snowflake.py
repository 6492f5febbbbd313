"""``snowflake``: ids made from the clock (Twitter's Snowflake layout), in two modes.

An id is ``timestamp << (workerBits + seqBits) | workerId << seqBits | sequence``: the time
since ``startTime``, the sidecar's worker id, and a counter within that time unit. Ids of one
sidecar strictly increase (for every key: one generator serves them all); sidecars with
different worker ids never hand out the same id. Ids are not consecutive, and ids of two
sidecars interleave only roughly in time order (Layotto's WEAK promise).

**Standalone** (no ``mysqlHost``; pylotto's own): the unit is the millisecond and the worker id
is configured. Metadata: ``workerId`` (0 to 2^workerBits - 1, default 0: give each sidecar
sharing ids its own), ``startTime`` (the epoch, an ISO date, UTC midnight, default
``2024-01-01``), ``timeBits`` (41), ``workerBits`` (10), ``seqBits`` (12).

**Layotto's** (``mysqlHost`` given, as Layotto's ``snowflake`` always is): the unit is the
second and each start takes a new worker id from a MySQL table, as Layotto does. Metadata
(Layotto's names): ``mysqlHost`` (``host:port``), ``databaseName``, ``userName``, ``password``,
``tableName`` (the worker-id table, default ``layotto_sequencer_snowflake``), ``keyTableName``
(default ``layotto_sequencer_snowflake_key``), ``startTime`` (an ISO date at local midnight,
default ``2022-01-01``), ``timeBits`` (28), ``workerBits`` (22), ``seqBits`` (13),
``reqTimeout`` (milliseconds, default 500) and ``keyTimeout`` (hours, default 24), plus
``timeout`` (every MySQL call, default 10s). The worker-id table is Layotto's: ``ID`` BIGINT
AUTO_INCREMENT, ``HOST_NAME`` (this host's first non-loopback IPv4 address), ``PORT``
(``<unix seconds>-<random>``), ``CREATED``; a start inserts one row and its ``ID`` is the
worker id, so two sidecars — pylotto's or Layotto's, on one host or many — and every restart
get distinct worker ids. Both tables are created when missing; the connection is closed once
the worker id is taken (ids need no server afterwards). Departures, each on the safe
side: a worker id that does not fit in ``workerBits`` stops the start (Layotto lets it spill
into the timestamp bits, where ids of two workers can collide); an empty ``password`` is
accepted (Layotto requires one, a server may not); ``reqTimeout`` and ``keyTimeout`` are
accepted with no effect, since ids never wait for a producer and one generator serves every
key for the process's lifetime (Layotto's key table records where an idle key's producer
stopped so that the same worker resumes after it; here nothing stops, so it stays empty).

In both modes the three widths add up to 63. ``keyPrefix`` is accepted like every
sequencer's; ``biggerThan`` floors are checked against the current id (a floor above it
cannot be met and stops the sidecar with a configuration error).

The time unit in an id is the clock's, or the last one used when the clock is behind it (a
clock stepped back, or 2^seqBits ids in one unit: the generator then runs a little ahead of
the clock, as Layotto's producer does): ids strictly increase without ever waiting. A horizon
is kept in ``<data_dir>/snowflake-<name>.last``: while running, one second ahead of the ids
handed out (rewritten once a second); after a clean close, the last unit used. A restart
continues after the horizon, so it never goes back, even after a crash or with a clock that
stepped back in between.
"""

from __future__ import annotations

import random
import socket
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from pydantic import Field, model_validator

from pylotto.components.base import ComponentContext
from pylotto.components.sequencer.base import Sequencer, SequencerSettings
from pylotto.core.errors import ConfigError, Unavailable
from pylotto.core.metadata import Duration
from pylotto.core.types import Metadata

STANDALONE_LAYOUT = (41, 10, 12)
LAYOTTO_LAYOUT = (28, 22, 13)
LAYOTTO_START = date(2022, 1, 1)
STANDALONE_START = date(2024, 1, 1)
TABLE = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"


class SnowflakeSettings(SequencerSettings):
    worker_id: int | None = Field(None, alias="workerId", ge=0)
    start_time: date | None = Field(None, alias="startTime")
    time_bits: int | None = Field(None, alias="timeBits", ge=20, le=53)
    worker_bits: int | None = Field(None, alias="workerBits", ge=0, le=32)
    seq_bits: int | None = Field(None, alias="seqBits", ge=1, le=22)
    # Layotto's MySQL worker ids
    mysql_host: str | None = Field(None, alias="mysqlHost", min_length=1)
    database_name: str | None = Field(None, alias="databaseName", min_length=1)
    user_name: str | None = Field(None, alias="userName", min_length=1)
    password: str = Field("", alias="password")
    table_name: str = Field("layotto_sequencer_snowflake", alias="tableName", pattern=TABLE)
    key_table_name: str = Field("layotto_sequencer_snowflake_key", alias="keyTableName",
                                pattern=TABLE)
    req_timeout: int = Field(500, alias="reqTimeout", ge=0)
    key_timeout: int = Field(24, alias="keyTimeout", ge=0)
    timeout: Duration = Field(10.0, alias="timeout", gt=0)

    @property
    def uses_mysql(self) -> bool:
        return self.mysql_host is not None

    @property
    def layout(self) -> tuple[int, int, int]:
        """(timeBits, workerBits, seqBits), each defaulting to its mode's."""
        default = LAYOTTO_LAYOUT if self.uses_mysql else STANDALONE_LAYOUT
        given = (self.time_bits, self.worker_bits, self.seq_bits)
        return tuple(g if g is not None else d  # type: ignore[return-value]
                     for g, d in zip(given, default, strict=True))

    @property
    def epoch(self) -> datetime:
        if self.uses_mysql:  # Layotto: the date at local midnight
            start = self.start_time or LAYOTTO_START
            return datetime(start.year, start.month, start.day).astimezone()
        start = self.start_time or STANDALONE_START
        return datetime(start.year, start.month, start.day, tzinfo=UTC)

    @model_validator(mode="after")
    def _fits(self) -> SnowflakeSettings:
        worker_bits = self.layout[1]
        if sum(self.layout) != 63:
            raise ValueError("timeBits + workerBits + seqBits must be 63")
        if self.uses_mysql:
            if self.worker_id is not None:
                raise ValueError("workerId is taken from the MySQL table when mysqlHost is "
                                 "set; give one or the other")
            for key, value in (("databaseName", self.database_name),
                               ("userName", self.user_name)):
                if value is None:
                    raise ValueError(f"mysqlHost is set: {key} is required too")
        elif (self.worker_id or 0) >= 1 << worker_bits:
            raise ValueError(f"workerId must be below {1 << worker_bits}")
        return self


class SnowflakeSequencer(Sequencer):
    per_process = True
    Settings = SnowflakeSettings
    settings: SnowflakeSettings

    def __init__(self, name: str, settings: SnowflakeSettings, context: ComponentContext) -> None:
        super().__init__(name, settings, context)
        self._time_bits, self._worker_bits, self._seq_bits = settings.layout
        self._unit_ns = 1_000_000_000 if settings.uses_mysql else 1_000_000
        self._per_second = 1_000_000_000 // self._unit_ns
        self._epoch = int(settings.epoch.timestamp() * 1_000_000_000) // self._unit_ns
        self._seq_mask = (1 << self._seq_bits) - 1
        self._max_unit = (1 << self._time_bits) - 1
        self.worker_id = settings.worker_id or 0
        self._last = -1
        self._seq = 0
        self._horizon = -1
        self._state = Path(context.data_dir) / f"snowflake-{name}.last"

    async def init(self) -> None:
        if self._now() > self._max_unit:
            raise ConfigError(f"sequencer store {self.name}: timeBits {self._time_bits} ran "
                              "out since startTime; move startTime forward or widen timeBits")
        try:
            self._last = int(self._state.read_text().strip())
            self._seq = self._seq_mask  # the saved time unit counts as used up
        except FileNotFoundError:
            pass
        except ValueError:
            self.context.logger.warning("ignoring unreadable %s", self._state)
        if self.settings.uses_mysql:
            self.worker_id = await self._take_worker_id()

    async def close(self) -> None:
        if self._last >= 0:
            self._write(self._last)

    def _write(self, horizon: int) -> None:
        self._state.parent.mkdir(parents=True, exist_ok=True)
        self._state.write_text(str(horizon))
        self._horizon = horizon

    def _now(self) -> int:
        return time.time_ns() // self._unit_ns - self._epoch

    def _compose(self, unit: int, seq: int) -> int:
        return ((unit << (self._worker_bits + self._seq_bits))
                | (self.worker_id << self._seq_bits) | seq)

    async def next_id(self, key: str, metadata: Metadata) -> int:
        # Never awaits, so concurrent callers cannot interleave. The unit used is the clock's
        # or, when the clock is behind (stepped back, or a unit's sequence is used up), the
        # last one used: ids keep increasing without waiting.
        unit = max(self._now(), self._last)
        if unit == self._last:
            self._seq = (self._seq + 1) & self._seq_mask
            if self._seq == 0:
                unit += 1
        else:
            self._seq = 0
        if unit > self._max_unit:
            raise Unavailable(f"sequencer store {self.name}: timeBits exhausted since startTime")
        self._last = unit
        if unit >= self._horizon:
            self._write(unit + self._per_second)
        return self._compose(unit, self._seq)

    async def ensure_bigger_than(self, key: str, floor: int) -> None:
        current = self._compose(max(self._now(), self._last), self._seq_mask)
        if floor >= current:
            raise ConfigError(f"sequencer store {self.name}: snowflake ids cannot be moved "
                              f"forward; {floor} is above the current id {current}")

    # ---- Layotto's worker ids in MySQL -------------------------------------------------------

    def _mysql(self) -> Any:
        from pylotto.components._backends.mysql_client import MySQLClient, MySQLSettings

        s = self.settings
        dsn = f"{s.user_name}:{s.password}@tcp({s.mysql_host})/{s.database_name}"
        settings = MySQLSettings.model_validate({"connectionString": dsn,
                                                 "timeout": s.timeout, "maxConns": 1})
        return MySQLClient(settings, f"sequencer store {self.name}")

    async def _take_worker_id(self) -> int:
        """Insert this start's row into the worker-id table; its ``ID`` is the worker id."""
        client = self._mysql()
        workers = client.table(self.settings.table_name)
        keys = client.table(self.settings.key_table_name)
        await client.open()
        try:
            await client.run_schema([
                f"CREATE TABLE IF NOT EXISTS {workers} ("
                "ID BIGINT NOT NULL AUTO_INCREMENT COMMENT 'auto increment id', "
                "HOST_NAME VARCHAR(64) NOT NULL COMMENT 'host name', "
                "PORT VARCHAR(64) NOT NULL COMMENT 'port', "
                "CREATED TIMESTAMP NOT NULL COMMENT 'created time', PRIMARY KEY(ID))",
                f"CREATE TABLE IF NOT EXISTS {keys} ("
                "SEQUENCER_KEY VARCHAR(64) NOT NULL COMMENT 'sequencer key', "
                "WORKER_ID VARCHAR(64) NOT NULL COMMENT 'worker id', "
                "TIMESTAMP VARCHAR(64) NOT NULL COMMENT 'timestamp', "
                "UNIQUE INDEX (SEQUENCER_KEY))",
            ])
            port = f"{int(time.time())}-{random.randrange(100000)}"  # a label only

            async def insert(cursor: Any) -> int:
                await cursor.execute(f"INSERT INTO {workers} (HOST_NAME, PORT, CREATED) "
                                     "VALUES (%s, %s, %s)", (host_address(), port,
                                                             datetime.now()))
                return int(cursor.lastrowid)

            worker_id: int = await client.call(insert, retry=False)
        finally:
            await client.close()
        if worker_id >= 1 << self._worker_bits:
            raise ConfigError(
                f"sequencer store {self.name}: worker id {worker_id} from table "
                f"{self.settings.table_name} does not fit in workerBits {self._worker_bits}; "
                "widen workerBits or empty the table")
        self.context.logger.info("sequencer store %s: snowflake worker id %d", self.name,
                                 worker_id)
        return worker_id


def host_address() -> str:
    """This host's first non-loopback IPv4 address (Layotto's ``HOST_NAME``), else its name."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("192.0.2.1", 9))  # no packet is sent: only the route is chosen
            address = str(probe.getsockname()[0])
            if not address.startswith("127."):
                return address
    except OSError:
        pass
    return socket.gethostname()[:64]
