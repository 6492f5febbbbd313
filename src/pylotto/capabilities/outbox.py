"""The transactional outbox: a state transaction's upserts are published if and only if it
commits (Dapr's ``outboxPublishPubsub`` / ``outboxPublishTopic`` state store metadata).

Dapr (dapr/dapr ``pkg/runtime/pubsub/outbox.go``) publishes each upsert to an internal topic
before the transaction, adds a marker key ``outbox-<uuid>`` to it, and a subscriber of the
internal topic publishes to the app's topic once it finds the marker (or rejects the message
when the marker never appears). pylotto keeps the outbox in the state store instead, so the
broker plays no part in the commit:

- **Record.** For each upsert of the transaction the capability adds one more upsert, the
  outbox record ``<key prefix>outbox||<time>-<uuid>`` (``||`` cannot be in an app's key, so a
  record never meets an app key), holding the CloudEvent to publish and where to. The records
  are written by the same store transaction as the app's operations: they exist if and only
  if it commits.
- **Relay.** After the commit the relay publishes the transaction's records, in operation
  order, through the pubsub capability, and deletes each once the broker took it. A record
  that cannot be published (broker down) stays in the store; the relay scans the store for
  records (:class:`~pylotto.components.state.base.KeyListingStateStore`) at start, after a
  failure (with back-off) and every ``SCAN_INTERVAL_SECONDS``, so records survive a broker
  outage and a sidecar restart. Delivery is at least once: a record published but not yet
  deleted when the sidecar stops is published again; the CloudEvent ``id`` stays the same, so
  subscribers can drop duplicates.

CloudEvent fields as Dapr's: ``id`` (the record's id), ``source`` (the app id), ``type``
(``com.dapr.event.sent``, daprd's), ``topic`` / ``pubsubname`` (the publish topic and pubsub),
``datacontenttype`` (the operation's ``contentType`` metadata, else ``text/plain``), the data,
the caller's ``traceparent``, and each metadata entry of the operation (but ``data`` / ``id``).
An upsert whose metadata says ``outbox.projection: true`` is not written: its value is what is
published for the upsert of the same key (Dapr's projections). Deletes publish nothing.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from pylotto.appchannel import cloudevents
from pylotto.capabilities.pubsub import PublishRequest
from pylotto.components.state.base import (
    DeleteRequest,
    KeyListingStateStore,
    SetRequest,
    StateStore,
    TransactionOp,
)
from pylotto.core.errors import PylottoError, Unsupported
from pylotto.core.keys import SEPARATOR, prefixed
from pylotto.core.tasks import stop_tasks

log = logging.getLogger("pylotto.outbox")

PROJECTION = "outbox.projection"
"""Upsert metadata: this value is published for the upsert of the same key, not written."""
CONTENT_TYPE = "contentType"
RECORD = f"outbox{SEPARATOR}"
"""What follows the key prefix in an outbox record's key."""
SCAN_INTERVAL_SECONDS = 60.0
"""How often an idle relay looks for records another sidecar left (its own failures are
retried sooner, with back-off). A scan is a key-range read on the SQL stores and etcd, a
SCAN of the database on Redis: kept rare."""
SCAN_BATCH = 100
DONE_KEPT = 10_000
RETRY_INITIAL_SECONDS = 0.5
RETRY_MAX_SECONDS = 5.0
_TRUTHY = frozenset({"1", "t", "true", "y", "yes", "on"})

Publish = Callable[[PublishRequest], Awaitable[None]]
T = TypeVar("T")


class StoreCall(Protocol):
    """A call to the store under its resiliency policies (``Capability.call`` bound to it)."""

    def __call__(self, attempt: Callable[[], Awaitable[T]]) -> Awaitable[T]: ...


async def _direct(attempt: Callable[[], Awaitable[T]]) -> T:
    return await attempt()


@dataclass(frozen=True, slots=True)
class OutboxConfig:
    pubsub: str
    topic: str


def outbox_config(store: StateStore) -> OutboxConfig | None:
    """The store's outbox settings, or None when it has none (both keys are needed, as in
    Dapr's ``AddOrUpdateOutbox``)."""
    settings = store.settings
    if settings.outbox_publish_pubsub and settings.outbox_publish_topic:
        return OutboxConfig(settings.outbox_publish_pubsub, settings.outbox_publish_topic)
    return None


def _truthy(value: str | None) -> bool:
    return value is not None and value.strip().lower() in _TRUTHY


def record_prefix(key_prefix: str) -> str:
    """Where a store's outbox records live for an app's key prefix."""
    return prefixed(key_prefix, "") + RECORD if key_prefix else RECORD


@dataclass(frozen=True, slots=True)
class Record:
    key: str
    body: bytes
    """JSON: ``{"pubsub", "topic", "event"}`` (the CloudEvent, a JSON object)."""


def with_records(
    operations: Sequence[TransactionOp],
    config: OutboxConfig,
    key_prefix: str,
    source: str,
    trace_parent: str = "",
    trace_state: str = "",
) -> tuple[list[TransactionOp], list[Record]]:
    """The transaction's operations without projections and with one outbox record upsert
    per remaining upsert, and those records (in operation order)."""
    projections = {op.key: op for op in operations
                   if isinstance(op, SetRequest) and _truthy(op.metadata.get(PROJECTION))}
    kept = [op for op in operations
            if not (isinstance(op, SetRequest) and _truthy(op.metadata.get(PROJECTION)))]
    records: list[Record] = []
    base = record_prefix(key_prefix)
    for op in kept:
        if not isinstance(op, SetRequest):
            continue
        shown = projections.get(op.key, op)
        event_id = f"{time.time_ns():020d}-{uuid.uuid4().hex}"
        event = cloudevents.new_envelope(
            shown.value, shown.metadata.get(CONTENT_TYPE, ""), topic=config.topic,
            pubsub_name=config.pubsub, source=source, event_id=event_id,
            trace_parent=trace_parent, trace_state=trace_state)
        for name, value in op.metadata.items():
            if name not in (cloudevents.DATA, cloudevents.ID):
                event[name] = value
        body = json.dumps({"pubsub": config.pubsub, "topic": config.topic, "event": event},
                          separators=(",", ":")).encode()
        records.append(Record(base + event_id, body))
    writes: list[TransactionOp] = [*kept, *(SetRequest(r.key, r.body, ttl_seconds=0)
                                            for r in records)]
    return writes, records


class Relay:
    """Publishes the outbox records of one state store (under one key prefix) and deletes
    them; see the module docstring."""

    def __init__(self, store_name: str, store: StateStore, key_prefix: str,
                 publish: Publish, call: StoreCall = _direct) -> None:
        if not isinstance(store, KeyListingStateStore):
            raise Unsupported(f"state store {store_name} doesn't support the outbox "
                              "(it cannot list its keys)")
        self.store_name = store_name
        self.store: KeyListingStateStore = store
        self.prefix = record_prefix(key_prefix)
        self.publish = publish
        self.call = call
        self._busy: set[str] = set()
        """Keys being published now: a scan leaves them to whoever holds them."""
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._deliveries: set[asyncio.Task[Any]] = set()
        self._failing = False
        self._done: dict[str, None] = {}
        """The last keys published (oldest first): a scan that read one just before its
        delete does not publish it twice."""

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"outbox {self.store_name}")

    async def stop(self) -> None:
        tasks = [t for t in (self._task, *self._deliveries) if t is not None]
        self._task = None
        await stop_tasks(*tasks)

    def committed(self, records: Sequence[Record]) -> None:
        """A transaction carrying ``records`` committed: publish them now (in order). While
        publishing fails they wait for the relay's next scan instead (no pile of attempts)."""
        if self._failing and self._task is not None:
            return
        task = asyncio.create_task(self._deliver(list(records)))
        self._deliveries.add(task)
        task.add_done_callback(self._delivered)

    def _delivered(self, task: asyncio.Task[Any]) -> None:
        self._deliveries.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("outbox of state store %s: delivery failed: %r", self.store_name, exc)
            self._wake.set()

    async def _deliver(self, records: list[Record]) -> bool:
        """Publish and delete each record in order; False (and a scan scheduled) on the first
        failure, which leaves it and the later ones in the store."""
        for record in records:
            if record.key in self._busy or record.key in self._done:
                continue
            self._busy.add(record.key)
            try:
                await self._publish_one(record)
            except PylottoError as exc:
                if not self._failing:
                    log.warning("outbox of state store %s: publishing failed, the record "
                                "stays in the store and is retried: %s", self.store_name,
                                exc.message)
                self._failing = True
                self._wake.set()
                return False
            finally:
                self._busy.discard(record.key)
        return True

    async def _publish_one(self, record: Record) -> None:
        try:
            body = json.loads(record.body)
            event = body["event"]
            target = (str(body["pubsub"]), str(body["topic"]))
            if not isinstance(event, dict):
                raise TypeError("the event is not a JSON object")
        except (ValueError, KeyError, TypeError):
            # not a record this relay wrote: left in the store, for its owner to look at
            log.error("outbox of state store %s: %r is not an outbox record; left as it is",
                      self.store_name, record.key)
            self._remember(record.key)
            return
        await self.publish(PublishRequest(
            pubsub_name=target[0], topic=target[1],
            data=json.dumps(event, separators=(",", ":")).encode(),
            data_content_type=cloudevents.CLOUDEVENT_CONTENT_TYPE,
            trace_parent=str(event.get(cloudevents.TRACEPARENT) or ""),
            trace_state=str(event.get(cloudevents.TRACESTATE) or "")))
        await self.call(lambda: self.store.delete(DeleteRequest(record.key)))
        self._remember(record.key)

    def _remember(self, key: str) -> None:
        self._done[key] = None
        if len(self._done) > DONE_KEPT:
            del self._done[next(iter(self._done))]

    async def scan_once(self) -> bool:
        """Publish every record found in the store (oldest first); True when all went out."""
        while True:
            found = await self.call(lambda: self.store.keys_with_prefix(self.prefix, SCAN_BATCH))
            keys = sorted(k for k in found if k not in self._busy and k not in self._done)
            if not keys:
                return True
            items = await self.call(functools.partial(self.store.bulk_get, keys, {}))
            records = [Record(item.key, item.value) for item in items if item.value]
            if not await self._deliver(records):
                return False
            if len(keys) < SCAN_BATCH:
                return True

    async def _run(self) -> None:
        delay = RETRY_INITIAL_SECONDS
        while True:
            try:
                done = await self.scan_once()
            except PylottoError as exc:
                log.warning("outbox of state store %s: scanning for records failed: %s",
                            self.store_name, exc.message)
                done = False
            except Exception as exc:  # the relay must outlive any one bad scan
                log.error("outbox of state store %s: scanning for records failed: %r",
                          self.store_name, exc)
                done = False
            if done:
                if self._failing:
                    log.info("outbox of state store %s: publishing succeeds again",
                             self.store_name)
                self._failing = False
                delay = RETRY_INITIAL_SECONDS
                wait = SCAN_INTERVAL_SECONDS
            else:
                wait, delay = delay, min(delay * 2, RETRY_MAX_SECONDS)
            self._wake.clear()
            with suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._wake.wait()
            if self._failing:  # woken by a failure: wait out the back-off first
                await asyncio.sleep(min(delay, RETRY_MAX_SECONDS))
