"""``postgresql``: configuration items in one PostgreSQL table, changes pushed by LISTEN/NOTIFY.

Metadata: ``connectionString``, ``timeout`` / ``timeoutInSeconds``, ``maxConns``, ``minConns``
(see :mod:`pylotto.components._backends.postgres_client`), ``tableName`` (Dapr's ``table`` is
accepted too; default ``configuration``). Default group and label: ``default``.

Row: ``app_id``, ``group``, ``label``, ``key`` (together the primary key), ``content``, ``tags``
and ``metadata`` (JSONB objects of strings). A row trigger NOTIFYs every insert, update and
delete on the channel ``<table>_changes``, so changes made by any writer — another sidecar or
plain SQL — reach subscribers, in commit order. The notification carries the whole item; one
too large for NOTIFY (8000 bytes) carries only its address and is read back from the table.

A dedicated connection LISTENs (opened with the first subscription). It is checked every
``timeout`` and reopened after a loss, with back-off (the :class:`ChangeFeed` loop); changes
committed while it was down are not replayed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Sequence
from typing import Any

from pydantic import Field

from pylotto.components._backends.postgres_client import (
    TABLE_NAME,
    PostgresClient,
    PostgresSettings,
    map_error,
    quote_table,
)
from pylotto.components.base import ComponentContext
from pylotto.components.configuration.base import (
    ALL_FEATURES,
    ChangeFeed,
    ChangeHandler,
    ConfigurationItem,
    ConfigurationStore,
    ItemsQuery,
    Subscribers,
    Subscription,
)
from pylotto.core.tasks import stop_task
from pylotto.core.types import Metadata

NOTIFY_LIMIT = 7900
"""Payload bytes above which a notification carries only the item's address."""


class PostgresConfigurationSettings(PostgresSettings):
    table_name: str = Field(
        "configuration", alias="tableName", validation_alias="table", pattern=TABLE_NAME
    )


class _Listener(ChangeFeed):
    """The LISTENing connection: the first one is opened by ``subscribe`` (so that it fails
    when the server is down), the next ones by :meth:`watch`."""

    store: PostgresConfigurationStore

    def __init__(self, store: PostgresConfigurationStore, connection: Any) -> None:
        super().__init__(store, "listening connection")
        self._connection = connection

    async def watch(self, resuming: bool) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            connection = await self.store.client.connect_single()
        try:
            await self.store._listen_on(connection, self)
        finally:
            self.store.listening.clear()
            connection.terminate()


class PostgresConfigurationStore(ConfigurationStore):
    features = ALL_FEATURES
    Settings = PostgresConfigurationSettings
    settings: PostgresConfigurationSettings

    def __init__(self, name: str, settings: PostgresConfigurationSettings,
                 context: ComponentContext) -> None:
        super().__init__(name, settings, context)
        self.client = PostgresClient(settings, f"configuration store {name}")
        self.table = quote_table(settings.table_name)
        base = settings.table_name.replace(".", "_")
        self.channel = f"{base}_changes"[:63]
        self._function = quote_table(f"{settings.table_name}_notify")
        self._trigger = f'"{base}_notify"'
        self._subscribers = Subscribers(name, context.logger)
        self._changes: asyncio.Queue[str] = asyncio.Queue()
        self._listener: _Listener | None = None
        self._dispatcher: asyncio.Task[None] | None = None
        self.listening = asyncio.Event()
        """Set while the listening connection is up (tests wait on it)."""

    # ---- lifecycle -----------------------------------------------------------------------

    async def init(self) -> None:
        payload = (
            "json_build_object('tx', txid_current(), 'op', TG_OP, 'app_id', r.app_id, "
            "'group', r.\"group\", 'label', r.label, 'key', r.key, 'content', "
            "CASE WHEN TG_OP = 'DELETE' THEN '' ELSE r.content END, 'tags', r.tags, "
            "'metadata', r.metadata)::text"
        )
        address = (
            "json_build_object('tx', txid_current(), 'op', TG_OP, 'app_id', r.app_id, "
            "'group', r.\"group\", 'label', r.label, 'key', r.key, 'big', true)::text"
        )
        await self.client.open([
            f"CREATE TABLE IF NOT EXISTS {self.table} (app_id TEXT NOT NULL, "
            "\"group\" TEXT NOT NULL, label TEXT NOT NULL, key TEXT NOT NULL, "
            "content TEXT NOT NULL, tags JSONB NOT NULL DEFAULT '{}', "
            "metadata JSONB NOT NULL DEFAULT '{}', "
            "PRIMARY KEY (app_id, \"group\", label, key))",
            f"CREATE OR REPLACE FUNCTION {self._function}() RETURNS trigger "
            "LANGUAGE plpgsql AS $$ DECLARE r RECORD; message TEXT; BEGIN "
            "IF TG_OP = 'DELETE' THEN r := OLD; ELSE r := NEW; END IF; "
            f"message := {payload}; "
            f"IF octet_length(message) > {NOTIFY_LIMIT} THEN message := {address}; END IF; "
            f"PERFORM pg_notify('{self.channel}', message); RETURN NULL; END $$",
            f"CREATE OR REPLACE TRIGGER {self._trigger} AFTER INSERT OR UPDATE OR DELETE "
            f"ON {self.table} FOR EACH ROW EXECUTE FUNCTION {self._function}()",
        ])

    async def close(self) -> None:
        self._subscribers.clear()
        if self._listener is not None:
            await self._listener.stop()
        await stop_task(self._dispatcher)
        self._listener = self._dispatcher = None
        self.listening.clear()
        await self.client.close()

    async def ping(self) -> None:
        await self.client.ping()

    # ---- items -----------------------------------------------------------------------------

    async def get(self, query: ItemsQuery) -> list[ConfigurationItem]:
        sql = (f"SELECT \"group\", label, key, content, tags, metadata FROM {self.table} "
               "WHERE app_id = $1 AND \"group\" = $2 AND label = $3")
        if query.keys:
            rows = await self.client.fetch(f"{sql} AND key = ANY($4::text[])", query.app_id,
                                           query.group, query.label, list(query.keys))
            found = {row["key"]: _item(row) for row in rows}
            return [found[key] for key in dict.fromkeys(query.keys) if key in found]
        rows = await self.client.fetch(f"{sql} ORDER BY key", query.app_id, query.group,
                                       query.label)
        return [_item(row) for row in rows]

    async def set(self, app_id: str, items: Sequence[ConfigurationItem],
                  metadata: Metadata) -> None:
        if not items:
            return
        async with self.client.connection() as conn, conn.transaction():
            await conn.executemany(
                f"INSERT INTO {self.table} (app_id, \"group\", label, key, content, tags, "
                "metadata) VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7::jsonb) "
                "ON CONFLICT (app_id, \"group\", label, key) DO UPDATE SET "
                "content = excluded.content, tags = excluded.tags, metadata = excluded.metadata",
                [(app_id, item.group, item.label, item.key, item.content,
                  json.dumps(item.tags), json.dumps(item.metadata)) for item in items],
            )

    async def delete(self, query: ItemsQuery) -> None:
        await self.client.execute(
            f"DELETE FROM {self.table} WHERE app_id = $1 AND \"group\" = $2 AND label = $3 "
            "AND key = ANY($4::text[])",
            query.app_id, query.group, query.label, list(query.keys),
        )

    # ---- subscriptions ---------------------------------------------------------------------

    async def subscribe(self, query: ItemsQuery, handler: ChangeHandler) -> Subscription:
        if self._listener is None or not self._listener.running:
            connection = await self.client.connect_single()  # fails now if the server is down
            self._dispatcher = asyncio.create_task(self._dispatch_loop())
            self._listener = _Listener(self, connection)
            self._listener.start()
            try:
                async with asyncio.timeout(self.client.timeout):
                    await self.listening.wait()
            except TimeoutError as exc:
                raise map_error(exc, self.client.what) from exc
        return self._subscribers.add(query, handler)

    def _on_notification(self, connection: Any, pid: int, channel: str, payload: str) -> None:
        self._changes.put_nowait(payload)

    async def _listen_on(self, connection: Any, feed: ChangeFeed) -> None:
        """Listen until the connection fails its periodic check (then raise)."""
        lost = asyncio.Event()
        connection.add_termination_listener(lambda _conn: lost.set())
        async with asyncio.timeout(self.client.timeout):
            await connection.add_listener(self.channel, self._on_notification)
        self.listening.set()
        feed.caught_up()
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.client.timeout):
                    await lost.wait()
            if lost.is_set() or connection.is_closed():
                raise ConnectionError("connection closed")
            async with asyncio.timeout(self.client.timeout):
                await connection.fetchval("SELECT 1")

    async def _dispatch_loop(self) -> None:
        """Hand queued notifications to subscribers; one call per transaction's items."""
        while True:
            batch = [await self._changes.get()]
            while not self._changes.empty():
                batch.append(self._changes.get_nowait())
            try:
                await self._deliver(batch)
            except Exception:
                self.context.logger.exception(
                    "configuration store %s: delivering changes failed", self.name)

    async def _deliver(self, payloads: list[str]) -> None:
        groups: list[tuple[Any, str, list[ConfigurationItem]]] = []
        for payload in payloads:
            change = json.loads(payload)
            item = await self._item_of(change)
            tx, app_id = change["tx"], change["app_id"]
            if groups and groups[-1][0] == tx and groups[-1][1] == app_id:
                groups[-1][2].append(item)
            else:
                groups.append((tx, app_id, [item]))
        for _, app_id, items in groups:
            self._subscribers.notify(app_id, items)

    async def _item_of(self, change: dict[str, Any]) -> ConfigurationItem:
        if not change.get("big") or change["op"] == "DELETE":
            return ConfigurationItem(
                key=change["key"], content=change.get("content") or "",
                group=change["group"], label=change["label"],
                tags=dict(change.get("tags") or {}), metadata=dict(change.get("metadata") or {}),
            )
        row = await self.client.fetchrow(
            f"SELECT \"group\", label, key, content, tags, metadata FROM {self.table} "
            "WHERE app_id = $1 AND \"group\" = $2 AND label = $3 AND key = $4",
            change["app_id"], change["group"], change["label"], change["key"],
        )
        if row is None:  # deleted since
            return ConfigurationItem(change["key"], "", change["group"], change["label"])
        return _item(row)


def _item(row: Any) -> ConfigurationItem:
    return ConfigurationItem(
        key=row["key"], content=row["content"], group=row["group"], label=row["label"],
        tags=_strings(row["tags"]), metadata=_strings(row["metadata"]),
    )


def _strings(value: Any) -> dict[str, str]:
    loaded = json.loads(value) if isinstance(value, str) else (value or {})
    return {str(k): str(v) for k, v in loaded.items()}
