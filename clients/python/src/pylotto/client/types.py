"""Plain values the SDK takes and returns (no protobuf in the public surface)."""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import grpc

Payload = bytes | str | Mapping[str, Any] | list[Any]
"""Data an app sends: bytes as-is, str as UTF-8, anything else as JSON."""


def encode_payload(data: Payload) -> tuple[bytes, str]:
    """The bytes and the content type a payload travels with."""
    if isinstance(data, bytes):
        return data, "application/octet-stream"
    if isinstance(data, str):
        return data.encode(), "text/plain"
    return json.dumps(data).encode(), "application/json"


class ClientError(Exception):
    """A call the sidecar refused or could not do; ``code`` is its gRPC status."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message


class LockNotAcquired(Exception):
    """``client.lock(...)`` found the lock held by another owner (for all of ``wait``)."""

    def __init__(self, store: str, resource: str) -> None:
        super().__init__(f"lock {resource!r} of {store!r} is held by another owner")
        self.store = store
        self.resource = resource


class EtagConflict(Exception):
    """``update_state`` lost the race to other writers ``attempts`` times in a row."""

    def __init__(self, store: str, key: str, attempts: int) -> None:
        super().__init__(f"{store}/{key}: changed by other writers on each of {attempts} "
                         "attempts")
        self.store = store
        self.key = key
        self.attempts = attempts


class Concurrency(enum.IntEnum):
    UNSPECIFIED = 0
    FIRST_WRITE = 1
    LAST_WRITE = 2


class Consistency(enum.IntEnum):
    UNSPECIFIED = 0
    EVENTUAL = 1
    STRONG = 2


class LockStatus(enum.IntEnum):
    """Answer of ``unlock`` and ``lock_keep_alive``."""

    SUCCESS = 0
    LOCK_UNEXIST = 1
    LOCK_BELONG_TO_OTHERS = 2
    INTERNAL_ERROR = 3


class EventStatus(enum.IntEnum):
    """What the app answers for an event: ack, redeliver later, or ack and discard."""

    SUCCESS = 0
    RETRY = 1
    DROP = 2


@dataclass(frozen=True)
class StateItem:
    """A key with its value, as saved or as read (``etag`` None: no etag)."""

    key: str
    value: bytes = b""
    etag: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    concurrency: Concurrency = Concurrency.UNSPECIFIED
    consistency: Consistency = Consistency.UNSPECIFIED


@dataclass(frozen=True)
class BulkStateItem:
    key: str
    value: bytes
    etag: str | None
    error: str
    metadata: Mapping[str, str]


@dataclass(frozen=True)
class QueryResult:
    """One page of ``query_state``: items in the query's order; ``token`` asks for the next
    page (empty on the last page)."""

    items: list[StateItem]
    token: str

    def json(self) -> list[Any]:
        """The values decoded from JSON, in order."""
        return [json.loads(item.value) for item in self.items]


@dataclass(frozen=True)
class TransactionOperation:
    """One operation of ``execute_state_transaction``: ``upsert`` or ``delete``."""

    operation: str
    item: StateItem

    @classmethod
    def upsert(cls, key: str, value: Payload, etag: str | None = None) -> TransactionOperation:
        return cls("upsert", StateItem(key, encode_payload(value)[0], etag))

    @classmethod
    def delete(cls, key: str, etag: str | None = None) -> TransactionOperation:
        return cls("delete", StateItem(key, etag=etag))


@dataclass(frozen=True)
class ConfigurationItem:
    key: str
    content: str = ""
    group: str = ""
    label: str = ""
    tags: Mapping[str, str] = field(default_factory=dict)
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class InvokeResult:
    data: bytes
    content_type: str


@dataclass(frozen=True)
class BindingResult:
    data: bytes
    metadata: Mapping[str, str]


@dataclass(frozen=True)
class FileInfo:
    name: str
    size: int
    last_modified: str
    metadata: Mapping[str, str]


@dataclass(frozen=True)
class FileList:
    files: list[FileInfo]
    marker: str
    is_truncated: bool


@dataclass(frozen=True)
class FileMeta:
    size: int
    last_modified: str
    metadata: Mapping[str, list[str]]


@dataclass(frozen=True)
class TopicEvent:
    """A CloudEvent delivered to the app."""

    id: str
    source: str
    type: str
    spec_version: str
    data_content_type: str
    topic: str
    pubsub_name: str
    data: bytes
    metadata: Mapping[str, str] = field(default_factory=dict)

    def text(self) -> str:
        return self.data.decode()

    def json(self) -> Any:
        return json.loads(self.data)
