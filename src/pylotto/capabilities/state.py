"""State: get, bulk get, save, delete, bulk delete and transactions on a named state store.

Every rule shared by the facades lives here: the store lookup (NotConfigured /
ComponentNotFound / InvalidArgument for an empty name), key prefixing (``keyPrefix`` component
metadata, see :mod:`pylotto.core.keys`), ``""`` etag meaning "no etag", the per-item
``ttlInSeconds`` metadata, the feature checks (etag, TTL, transactions) and the operation types
of a transaction. Component errors keep their class (hence their status code) and gain a
message saying what failed.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from pylotto.capabilities.base import Capability
from pylotto.components.state.base import (
    BulkGetItem,
    Concurrency,
    Consistency,
    DeleteRequest,
    Feature,
    GetResult,
    SetRequest,
    StateStore,
    TransactionalStateStore,
    TransactionOp,
)
from pylotto.components.state.query import QueryableStateStore, QueryResult, parse_query
from pylotto.core.errors import InvalidArgument, PylottoError, Unsupported
from pylotto.core.keys import key_prefix, prefixed

log = logging.getLogger("pylotto.state")

TTL_IN_SECONDS = "ttlInSeconds"
"""Per-item request metadata: seconds before the item expires (``<= 0``: never)."""

UPSERT = "upsert"
DELETE = "delete"

_CONCURRENCY_WIRE = {0: Concurrency.UNSPECIFIED, 1: Concurrency.FIRST_WRITE,
                     2: Concurrency.LAST_WRITE}
_CONSISTENCY_WIRE = {0: Consistency.UNSPECIFIED, 1: Consistency.EVENTUAL, 2: Consistency.STRONG}


def concurrency_from_wire(value: int) -> Concurrency:
    """``StateOptions.StateConcurrency`` (same numbers in Layotto's and Dapr's protos)."""
    try:
        return _CONCURRENCY_WIRE[value]
    except KeyError:
        raise InvalidArgument(f"unknown state concurrency {value}") from None


def consistency_from_wire(value: int) -> Consistency:
    """``StateOptions.StateConsistency`` (same numbers in Layotto's and Dapr's protos)."""
    try:
        return _CONSISTENCY_WIRE[value]
    except KeyError:
        raise InvalidArgument(f"unknown state consistency {value}") from None


@dataclass(frozen=True, slots=True)
class StateItem:
    """One item to save or delete, as an app sends it (key not yet prefixed)."""

    key: str
    value: bytes = b""
    etag: str | None = None
    """None or "": no etag."""
    metadata: Mapping[str, str] = field(default_factory=dict)
    concurrency: Concurrency = Concurrency.UNSPECIFIED
    consistency: Consistency = Consistency.UNSPECIFIED


@dataclass(frozen=True, slots=True)
class StateOperation:
    """One operation of a transaction: ``operation_type`` is "upsert" or "delete"."""

    operation_type: str
    item: StateItem | None
    """None (a missing request on the wire): the operation is skipped, as Layotto does."""


def _rewrapped(err: PylottoError, what: str) -> PylottoError:
    """The same error class (same status code) with a message saying what failed."""
    return type(err)(f"{what}: {err.message}")


class StateCapability(Capability[StateStore]):
    """The state API over the configured state stores."""

    # ---- helpers -----------------------------------------------------------------------------

    def _store(self, store_name: str) -> tuple[StateStore, str]:
        """The store and the key prefix its ``keyPrefix`` strategy gives."""
        store = self.components.get(store_name)
        prefix = key_prefix(store.settings.key_prefix, app_id=self.context.app_id,
                            component=store_name)
        return store, prefix

    @staticmethod
    def _key(store: StateStore, prefix: str, key: str) -> str:
        if not key:
            raise InvalidArgument("state key is empty")
        refused = [c for c in store.refused_in_keys if c in key]
        if refused:
            raise InvalidArgument(f"state store {store.name} can't hold a key containing "
                                  f"{', '.join(map(repr, refused))}: {key!r}")
        return prefixed(prefix, key)

    @staticmethod
    def _etag(store: StateStore, etag: str | None) -> str | None:
        if not etag:
            return None
        if not store.has(Feature.ETAG):
            raise Unsupported(f"state store {store.name} doesn't support etags")
        return etag

    @staticmethod
    def _concurrency(store: StateStore, concurrency: Concurrency) -> Concurrency:
        if concurrency is Concurrency.FIRST_WRITE and not store.has(Feature.ETAG):
            raise Unsupported(f"state store {store.name} doesn't support first-write concurrency")
        return concurrency

    @staticmethod
    def _ttl(store: StateStore, metadata: Mapping[str, str]) -> int | None:
        raw = metadata.get(TTL_IN_SECONDS)
        if raw is None:
            return None
        try:
            ttl = int(raw.strip())
        except ValueError:
            raise InvalidArgument(
                f"metadata {TTL_IN_SECONDS}={raw!r} is not an integer number of seconds"
            ) from None
        if not store.has(Feature.TTL):
            raise Unsupported(f"state store {store.name} doesn't support {TTL_IN_SECONDS}")
        return ttl

    def _set_request(self, store: StateStore, prefix: str, item: StateItem) -> SetRequest:
        return SetRequest(
            key=self._key(store, prefix, item.key),
            value=bytes(item.value),
            etag=self._etag(store, item.etag),
            concurrency=self._concurrency(store, item.concurrency),
            consistency=item.consistency,
            ttl_seconds=self._ttl(store, item.metadata),
            metadata=dict(item.metadata),
        )

    def _delete_request(self, store: StateStore, prefix: str, item: StateItem) -> DeleteRequest:
        return DeleteRequest(
            key=self._key(store, prefix, item.key),
            etag=self._etag(store, item.etag),
            concurrency=self._concurrency(store, item.concurrency),
            consistency=item.consistency,
            metadata=dict(item.metadata),
        )

    # ---- the API -----------------------------------------------------------------------------

    async def get_state(
        self,
        store_name: str,
        key: str,
        consistency: Consistency = Consistency.UNSPECIFIED,
        metadata: Mapping[str, str] | None = None,
    ) -> GetResult:
        """The value and etag of ``key``; a missing key gives empty value and no etag."""
        store, prefix = self._store(store_name)
        stored_key = self._key(store, prefix, key)
        try:
            got = await self.call(store_name, lambda: store.get(
                stored_key, consistency, dict(metadata or {})))
        except PylottoError as err:
            raise _rewrapped(err, f"fail to get {key} from state store {store_name}") from err
        return got if got is not None else GetResult(b"")

    async def get_bulk_state(
        self, store_name: str, keys: Sequence[str], metadata: Mapping[str, str] | None = None
    ) -> list[BulkGetItem]:
        """One item per key (original, unprefixed keys); per-key failures in ``error``."""
        store, prefix = self._store(store_name)
        if not keys:
            return []
        originals = {self._key(store, prefix, key): key for key in keys}
        try:
            items = await self.call(store_name, lambda: store.bulk_get(
                list(originals), dict(metadata or {})))
        except PylottoError as err:
            raise _rewrapped(err, f"fail to get bulk state from state store {store_name}") from err
        by_key = {item.key: item for item in items}
        result = []
        for key in keys:
            item = by_key.get(prefixed(prefix, key))
            if item is None:
                result.append(BulkGetItem(key, error="no result from the state store"))
            elif item.key == key:  # no prefix: the store's item as it is
                result.append(item)
            else:
                result.append(BulkGetItem(key, item.value, item.etag, item.error, item.metadata))
        return result

    async def save_state(self, store_name: str, items: Sequence[StateItem]) -> None:
        store, prefix = self._store(store_name)
        requests = [self._set_request(store, prefix, item) for item in items]
        if not requests:
            return
        try:
            await self.call(store_name, lambda: store.bulk_set(requests))
        except PylottoError as err:
            raise _rewrapped(err, f"failed saving state in state store {store_name}") from err

    async def delete_state(self, store_name: str, item: StateItem) -> None:
        store, prefix = self._store(store_name)
        request = self._delete_request(store, prefix, item)
        try:
            await self.call(store_name, lambda: store.delete(request))
        except PylottoError as err:
            raise _rewrapped(err, f"failed deleting state with key {item.key}") from err

    async def delete_bulk_state(self, store_name: str, items: Sequence[StateItem]) -> None:
        store, prefix = self._store(store_name)
        requests = [self._delete_request(store, prefix, item) for item in items]
        if not requests:
            return
        try:
            await self.call(store_name, lambda: store.bulk_delete(requests))
        except PylottoError as err:
            raise _rewrapped(err, f"failed deleting state in state store {store_name}") from err

    async def execute_state_transaction(
        self,
        store_name: str,
        operations: Sequence[StateOperation],
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        """Apply ``operations`` all-or-nothing (stores declaring TRANSACTIONAL only)."""
        store, prefix = self._store(store_name)
        if not (isinstance(store, TransactionalStateStore) and store.has(Feature.TRANSACTIONAL)):
            raise Unsupported(f"state store {store_name} doesn't support transaction")
        requests: list[TransactionOp] = []
        for operation in operations:
            if operation.item is None:
                log.warning("state store %s: a transaction operation without request is skipped",
                            store_name)
                continue
            if operation.operation_type == UPSERT:
                requests.append(self._set_request(store, prefix, operation.item))
            elif operation.operation_type == DELETE:
                requests.append(self._delete_request(store, prefix, operation.item))
            else:
                raise Unsupported(f"operation type {operation.operation_type} not supported")
        if not requests:
            return
        try:
            await self.call(store_name, lambda: store.multi(requests, dict(metadata or {})))
        except PylottoError as err:
            raise _rewrapped(err, "error while executing state transaction") from err

    async def query_state(
        self,
        store_name: str,
        query_json: str | bytes | Mapping[str, Any],
        metadata: Mapping[str, str] | None = None,
    ) -> QueryResult:
        """Run a Dapr-format query on this app's keys (stores declaring QUERY_API only).

        Result keys come back without the key prefix; the store only sees keys under it.
        """
        store, prefix = self._store(store_name)
        parsed = parse_query(query_json)
        if not (isinstance(store, QueryableStateStore) and store.has(Feature.QUERY_API)):
            raise Unsupported(f"state store {store_name} doesn't support query")
        scope = prefixed(prefix, "")
        try:
            result = await self.call(store_name, lambda: store.query(
                replace(parsed, key_prefix=scope), dict(metadata or {})))
        except PylottoError as err:
            raise _rewrapped(err, f"failed querying state store {store_name}") from err
        items = [replace(item, key=item.key[len(scope):]) for item in result.items
                 if item.key.startswith(scope)]
        return QueryResult(items=items, token=result.token)
