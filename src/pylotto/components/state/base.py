"""State store contract.

Keys reaching a store are already prefixed (``keyPrefix`` is the capability's job). Values are
opaque bytes, returned unchanged. Etags are opaque strings chosen by the store; an empty etag is
never handed down (the capability turns ``""`` into ``None``).
"""

from __future__ import annotations

import abc
import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import ClassVar

from pydantic import Field

from pylotto.components.base import Component
from pylotto.core.errors import EtagInvalid, EtagMismatch
from pylotto.core.keys import KeyPrefix
from pylotto.core.metadata import ComponentSettings, TtlSeconds
from pylotto.core.types import Metadata

TTL_EXPIRE_TIME = "ttlExpireTime"
"""Result metadata key carrying an item's expiry time (RFC 3339, UTC), as Dapr does."""


class Feature(enum.StrEnum):
    ETAG = "ETAG"
    TRANSACTIONAL = "TRANSACTIONAL"
    TTL = "TTL"
    QUERY_API = "QUERY_API"


class Concurrency(enum.StrEnum):
    UNSPECIFIED = ""
    FIRST_WRITE = "first-write"
    LAST_WRITE = "last-write"


class Consistency(enum.StrEnum):
    UNSPECIFIED = ""
    EVENTUAL = "eventual"
    STRONG = "strong"


class StateSettings(ComponentSettings):
    """Keys every state store accepts; ``keyPrefix`` is applied by the capability layer."""

    key_prefix: KeyPrefix = Field("none", alias="keyPrefix")
    ttl_in_seconds: TtlSeconds | None = Field(None, alias="ttlInSeconds")
    """Default TTL of every write that does not give one; None or <= 0: never expire."""
    # the transactional outbox (Dapr's keys; pylotto.capabilities.outbox applies them)
    outbox_publish_pubsub: str = Field("", alias="outboxPublishPubsub")
    """The pubsub a committed transaction's upserts are published to ("": no outbox)."""
    outbox_publish_topic: str = Field("", alias="outboxPublishTopic")
    outbox_pubsub: str = Field("", alias="outboxPubsub")
    """Dapr's internal-topic pubsub; pylotto keeps the outbox in the store (accepted, unused)."""
    outbox_discard_when_missing_state: bool = Field(False, alias="outboxDiscardWhenMissingState")
    """Dapr's: drop an internal message whose transaction did not commit; pylotto never has
    such a message (accepted, unused)."""
    actor_state_store: bool = Field(False, alias="actorStateStore")
    """Dapr's: this store holds actor state (read by process/assembly.py, docs/actors.md)."""


@dataclass(frozen=True, slots=True)
class GetResult:
    value: bytes
    etag: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class BulkGetItem:
    key: str
    value: bytes = b""
    etag: str | None = None
    error: str = ""
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SetRequest:
    key: str
    value: bytes
    etag: str | None = None
    concurrency: Concurrency = Concurrency.UNSPECIFIED
    consistency: Consistency = Consistency.UNSPECIFIED
    ttl_seconds: int | None = None
    """None: the store's default; <= 0: never expire."""
    metadata: Metadata = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DeleteRequest:
    key: str
    etag: str | None = None
    concurrency: Concurrency = Concurrency.UNSPECIFIED
    consistency: Consistency = Consistency.UNSPECIFIED
    metadata: Metadata = field(default_factory=dict)


TransactionOp = SetRequest | DeleteRequest


class StateStore(Component):
    """Key/value store with optional etags, TTL and transactions (see ``features``).

    A store declaring ETAG must raise EtagMismatch when a given etag differs from the stored
    one (or the key is absent, unless the store is one whose reference takes any etag on a
    missing key) and, where its reference does, EtagInvalid for an etag it cannot parse;
    FIRST_WRITE with no etag must fail with EtagMismatch when the key exists. A write without
    etag (and not FIRST_WRITE) always succeeds; so does a delete without etag, present key or
    not. A store that does not declare ETAG is never handed an etag (the capability refuses
    first).
    """

    Settings: ClassVar[type[ComponentSettings]] = StateSettings
    settings: StateSettings
    refused_in_keys: ClassVar[str] = ""
    """Characters the backend cannot hold in a key (PostgreSQL's TEXT: NUL). The capability
    refuses a key containing one with InvalidArgument on every verb, reads included, so a
    single and a bulk read of it always agree."""

    @abc.abstractmethod
    async def get(self, key: str, consistency: Consistency, metadata: Metadata) -> GetResult | None:
        """The value and etag of ``key``, or None when absent (or expired)."""

    async def bulk_get(self, keys: Sequence[str], metadata: Metadata) -> list[BulkGetItem]:
        """One item per key, in the order given; an absent key is an item with empty value.

        Default: one get per key; stores with a multi-get override this (one round trip).
        """
        items = []
        for key in keys:
            try:
                got = await self.get(key, Consistency.UNSPECIFIED, metadata)
            except Exception as exc:  # reported per item, like Layotto
                items.append(BulkGetItem(key=key, error=str(exc)))
                continue
            if got is None:
                items.append(BulkGetItem(key=key))
            else:
                items.append(BulkGetItem(key, got.value, got.etag, metadata=got.metadata))
        return items

    @abc.abstractmethod
    async def set(self, request: SetRequest) -> None: ...

    @abc.abstractmethod
    async def delete(self, request: DeleteRequest) -> None: ...

    async def bulk_set(self, requests: Sequence[SetRequest]) -> None:
        for request in requests:
            await self.set(request)

    async def bulk_delete(self, requests: Sequence[DeleteRequest]) -> None:
        for request in requests:
            await self.delete(request)


class KeyListingStateStore(StateStore):
    """A store that lists its live keys under a prefix: what the transactional outbox's relay
    needs to find the records a stopped sidecar left (pylotto.capabilities.outbox)."""

    @abc.abstractmethod
    async def keys_with_prefix(self, prefix: str, limit: int) -> list[str]:
        """Up to ``limit`` live keys that start with ``prefix`` (any order)."""


def prefix_end(prefix: str) -> str:
    """The least string greater than every string that starts with ``prefix`` (non-empty),
    for a key range ``prefix <= key < prefix_end(prefix)`` in code-point order."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


class TransactionalStateStore(StateStore):
    """A store that applies a list of operations all-or-nothing (declares TRANSACTIONAL)."""

    @abc.abstractmethod
    async def multi(self, operations: Sequence[TransactionOp], metadata: Metadata) -> None: ...


class BatchStateStore(TransactionalStateStore):
    """A store whose every write is one all-or-nothing batch: subclasses write :meth:`apply`,
    and set, delete, bulk writes and transactions all go through it."""

    @abc.abstractmethod
    async def apply(self, operations: Sequence[TransactionOp]) -> None:
        """Check every operation's etag, then write all of them or none."""

    async def set(self, request: SetRequest) -> None:
        await self.apply([request])

    async def delete(self, request: DeleteRequest) -> None:
        await self.apply([request])

    async def bulk_set(self, requests: Sequence[SetRequest]) -> None:
        await self.apply(requests)

    async def bulk_delete(self, requests: Sequence[DeleteRequest]) -> None:
        await self.apply(requests)

    async def multi(self, operations: Sequence[TransactionOp], metadata: Metadata) -> None:
        await self.apply(operations)


# ---- helpers for stores with integer etags and TTL ------------------------------------------


def parse_int_etag(etag: str, store: str) -> int:
    """The version an integer etag stands for; EtagInvalid when it is not a decimal number."""
    if not (etag.isascii() and etag.isdigit()):
        raise EtagInvalid(f"state store {store}: invalid etag {etag!r}: expected a decimal number")
    return int(etag)


def expires_at(ttl_seconds: int | None, default_ttl: int | None, now: float) -> float | None:
    """Unix time at which a write expires, or None for never (``ttl <= 0`` or no TTL at all)."""
    ttl = default_ttl if ttl_seconds is None else ttl_seconds
    if ttl is None or ttl <= 0:
        return None
    return now + ttl


def expiry_metadata(expiry: float | None) -> dict[str, str]:
    """``{"ttlExpireTime": RFC 3339}`` for an expiring item, ``{}`` otherwise."""
    if expiry is None:
        return {}
    when = datetime.fromtimestamp(expiry, tz=UTC)
    return {TTL_EXPIRE_TIME: when.isoformat(timespec="seconds").replace("+00:00", "Z")}


def etag_number(etag: str) -> int | None:
    """The version a decimal etag stands for, or None for any other text (which then matches
    no item: components-contrib's text-compared stores answer it as a mismatch)."""
    return int(etag) if etag.isascii() and etag.isdigit() else None


def check_write(op: TransactionOp, current: int | str | None, store: str, *,
                missing_takes_etag: bool = False) -> None:
    """Apply the etag and first-write rules to ``op`` against the key's live version.

    ``current`` is None when the key is absent or expired. A given etag is compared as text
    (so any text that is not the current version is a mismatch, as components-contrib's
    in-memory, SQLite, MySQL and etcd stores answer). ``missing_takes_etag``: a missing key
    matches any etag (contrib's ZooKeeper store creates it). Raises EtagMismatch.
    """
    if op.etag is not None:
        if current is None:
            if missing_takes_etag:
                return
            raise EtagMismatch(
                f"state store {store}: etag mismatch: key {op.key!r} does not exist"
            )
        if str(current) != op.etag:
            raise EtagMismatch(
                f"state store {store}: etag mismatch for key {op.key!r}: "
                f"{op.etag!r} is not the current version"
            )
    elif (
        isinstance(op, SetRequest)
        and op.concurrency is Concurrency.FIRST_WRITE
        and current is not None
    ):
        raise EtagMismatch(
            f"state store {store}: first-write: key {op.key!r} exists and no etag was given"
        )
