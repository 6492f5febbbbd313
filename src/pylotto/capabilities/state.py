"""State: get, bulk get, save, delete, bulk delete and transactions on a named state store.

Every rule shared by the facades lives here: the store lookup (NotConfigured /
ComponentNotFound / InvalidArgument for an empty name), key prefixing (``keyPrefix`` component
metadata, see :mod:`pylotto.core.keys`), ``""`` etag meaning "no etag", the per-item
``ttlInSeconds`` metadata, the feature checks (etag, TTL, transactions) and the operation types
of a transaction. Component errors keep their class (hence their status code) and gain a
message saying what failed.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from pylotto.capabilities import outbox
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
from pylotto.core.errors import Internal, InvalidArgument, PylottoError, Unsupported
from pylotto.core.keys import key_prefix, prefixed
from pylotto.core.metadata import MAX_TTL_SECONDS, TTL_IN_SECONDS, parse_ttl_seconds
from pylotto.observability.throttled import ThrottledLog

log = logging.getLogger("pylotto.state")
_mistakes = ThrottledLog(log)
"""A caller's mistake that is not refused: one warning per kind and interval."""

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


class EtagRules(enum.StrEnum):
    """How the caller's dialect reads an etag, before the store sees it (the one place).

    ``DAPR``: the etag as sent (``""``: none); each store then answers as its components-contrib
    counterpart does (docs/state.md, per store). ``LAYOTTO``: moreover ``"0"`` is no etag — what
    Layotto's SDKs send when the caller gives none (js-sdk 1.18.0 ``State.ts``), read so by
    Layotto's Redis store (components-contrib v1.5.2) — and a save under
    ``CONCURRENCY_LAST_WRITE`` carries no etag, as v1.5.2's Redis and ZooKeeper stores ignore
    it there. Deletes keep a given etag whatever the concurrency (v1.5.2 Redis checks it).
    """

    DAPR = "dapr"
    LAYOTTO = "layotto"


LAYOTTO_NO_ETAG = "0"


def _effective_etag(item: StateItem, rules: EtagRules, *, save: bool) -> str | None:
    """The etag the store is asked to check, or None (no check)."""
    if not item.etag:
        return None
    if rules is EtagRules.LAYOTTO and (
        item.etag == LAYOTTO_NO_ETAG or (save and item.concurrency is Concurrency.LAST_WRITE)
    ):
        return None
    return item.etag


def _internal(key: str) -> bool:
    """A key the sidecar wrote for itself (outbox records): an app's key has no ``||``."""
    return "||" in key


def _rewrapped(err: PylottoError, what: str, where: str, **fields: str) -> PylottoError:
    """The same error class (same status code) with a message saying what failed, and
    where, for the Dapr dialect (the component's message is its ``detail``)."""
    return type(err)(f"{what}: {err.message}", where=where, detail=err.message, **fields)


class StateCapability(Capability[StateStore]):
    """The state API over the configured state stores."""

    publish: outbox.Publish | None = None
    """Where the transactional outbox publishes (the pubsub capability's ``publish``, given
    by :meth:`CapabilityServices.build`); None: a store with outbox metadata refuses
    transactions."""
    pubsub_exists: Callable[[str], object] | None = None
    """Raises when no pubsub has that name (the pubsub capability's component lookup): a
    transaction on an outbox store whose pubsub is missing fails, as Dapr's does."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._relays: dict[str, outbox.Relay] = {}
        self._retired: set[asyncio.Task[None]] = set()

    def _relay(self, store_name: str, store: StateStore, prefix: str) -> outbox.Relay:
        relay = self._relays.get(store_name)
        if relay is None or relay.store is not store:
            if relay is not None:  # the component was replaced without a detach
                retired = asyncio.create_task(relay.stop())
                self._retired.add(retired)
                retired.add_done_callback(self._retired.discard)
            if self.publish is None:
                raise Unsupported(f"state store {store_name}: the outbox needs a pubsub")
            relay = self._relays[store_name] = outbox.Relay(
                store_name, store, prefix, self.publish,
                lambda attempt: self.call(store_name, attempt))
        return relay

    async def start(self) -> None:
        """Start the outbox relay of each store with outbox metadata (it first publishes what
        an earlier run left)."""
        for name, store in self.components.items():
            await self.attach_outbox(name, store)

    async def attach_outbox(self, name: str, store: StateStore) -> None:
        if outbox.outbox_config(store) is None or self.publish is None:
            return
        try:
            self._relay(name, store, self._store(name)[1]).start()
        except Unsupported as exc:
            log.warning("%s: transactions on it are refused", exc.message)

    async def stop(self) -> None:
        for relay in list(self._relays.values()):
            await relay.stop()

    async def detach(self, component_name: str) -> None:
        relay = self._relays.pop(component_name, None)
        if relay is not None:
            await relay.stop()

    async def attach(self, component_name: str) -> None:
        await self.attach_outbox(component_name, self.components.get(component_name))

    # ---- helpers -----------------------------------------------------------------------------

    def _store(self, store_name: str) -> tuple[StateStore, str]:
        """The store and the key prefix its ``keyPrefix`` strategy gives."""
        store = self.components.get(store_name)
        prefix = key_prefix(store.settings.key_prefix, app_id=self.context.app_id,
                            component=store_name)
        return store, prefix

    @staticmethod
    def _key(store: StateStore, prefix: str, key: str, *, saving: bool = False) -> str:
        if not key:
            raise InvalidArgument("state key is empty",
                                  where="state.save_key" if saving else "", store=store.name)
        refused = [c for c in store.refused_in_keys if c in key]
        if refused:
            raise InvalidArgument(f"state store {store.name} can't hold a key containing "
                                  f"{', '.join(map(repr, refused))}: {key!r}")
        try:
            return prefixed(prefix, key)
        except InvalidArgument as err:
            raise err.at("state.key", key=key, store=store.name) from None

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
        ttl = parse_ttl_seconds(raw, minimum=-MAX_TTL_SECONDS)
        if not store.has(Feature.TTL):
            raise Unsupported(f"state store {store.name} doesn't support {TTL_IN_SECONDS}")
        return ttl

    def _set_request(self, store: StateStore, prefix: str, item: StateItem,
                     rules: EtagRules) -> SetRequest:
        return SetRequest(
            key=self._key(store, prefix, item.key, saving=True),
            value=bytes(item.value),
            etag=self._etag(store, _effective_etag(item, rules, save=True)),
            concurrency=self._concurrency(store, item.concurrency),
            consistency=item.consistency,
            ttl_seconds=self._ttl(store, item.metadata),
            metadata=dict(item.metadata),
        )

    def _delete_request(self, store: StateStore, prefix: str, item: StateItem,
                        rules: EtagRules) -> DeleteRequest:
        return DeleteRequest(
            key=self._key(store, prefix, item.key),
            etag=self._etag(store, _effective_etag(item, rules, save=False)),
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
                stored_key, consistency, dict(metadata or {})), "get")
        except PylottoError as err:
            raise _rewrapped(err, f"fail to get {key} from state store {store_name}",
                             "state.get", key=key, store=store_name) from err
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
                list(originals), dict(metadata or {})), "bulk_get")
        except PylottoError as err:
            raise _rewrapped(err, f"fail to get bulk state from state store {store_name}",
                             "state.bulk_get", store=store_name) from err
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

    async def save_state(self, store_name: str, items: Sequence[StateItem],
                         rules: EtagRules = EtagRules.DAPR) -> None:
        store, prefix = self._store(store_name)
        requests = [self._set_request(store, prefix, item, rules) for item in items]
        if not requests:
            return
        try:
            await self.call(store_name, lambda: store.bulk_set(requests), "set")
        except PylottoError as err:
            raise _rewrapped(err, f"failed saving state in state store {store_name}",
                             "state.save", store=store_name) from err

    async def delete_state(self, store_name: str, item: StateItem,
                           rules: EtagRules = EtagRules.DAPR) -> None:
        store, prefix = self._store(store_name)
        request = self._delete_request(store, prefix, item, rules)
        try:
            await self.call(store_name, lambda: store.delete(request), "delete")
        except PylottoError as err:
            raise _rewrapped(err, f"failed deleting state with key {item.key}",
                             "state.delete", key=item.key, store=store_name) from err

    async def delete_bulk_state(self, store_name: str, items: Sequence[StateItem],
                                rules: EtagRules = EtagRules.DAPR) -> None:
        store, prefix = self._store(store_name)
        requests = [self._delete_request(store, prefix, item, rules) for item in items]
        if not requests:
            return
        try:
            await self.call(store_name, lambda: store.bulk_delete(requests),
                            "bulk_delete")
        except PylottoError as err:
            raise _rewrapped(err, f"failed deleting state in state store {store_name}",
                             "state.bulk_delete", store=store_name) from err

    async def execute_state_transaction(
        self,
        store_name: str,
        operations: Sequence[StateOperation],
        metadata: Mapping[str, str] | None = None,
        rules: EtagRules = EtagRules.DAPR,
    ) -> None:
        """Apply ``operations`` all-or-nothing (stores declaring TRANSACTIONAL only)."""
        store, prefix = self._store(store_name)
        if not (isinstance(store, TransactionalStateStore) and store.has(Feature.TRANSACTIONAL)):
            raise Unsupported(f"state store {store_name} doesn't support transaction",
                              where="state.transactional", store=store_name)
        requests: list[TransactionOp] = []
        for operation in operations:
            if operation.item is None:
                _mistakes.warning("transaction operation without request",
                                  "state store %s: a transaction operation without request is "
                                  "skipped", store_name)
                continue
            if operation.operation_type == UPSERT:
                requests.append(self._set_request(store, prefix, operation.item, rules))
            elif operation.operation_type == DELETE:
                requests.append(self._delete_request(store, prefix, operation.item, rules))
            else:
                raise Unsupported(f"operation type {operation.operation_type} not supported",
                                  where="state.operation", store=store_name,
                                  operation=operation.operation_type)
        if not requests:
            return
        config = outbox.outbox_config(store)
        records: list[outbox.Record] = []
        relay: outbox.Relay | None = None
        if config is not None:
            relay = self._relay(store_name, store, prefix)
            if self.pubsub_exists is not None:
                try:
                    self.pubsub_exists(config.pubsub)
                except PylottoError as err:
                    raise Internal(f"error while publishing outbox message: {err.message}",
                                   where="state.outbox", detail=err.message) from err
            carrier = self.tracing.carrier({})
            requests, records = outbox.with_records(
                requests, config, prefix, self.context.app_id or "pylotto",
                carrier.get("traceparent", ""), carrier.get("tracestate", ""))
        writes = requests
        try:
            await self.call(store_name, lambda: store.multi(writes, dict(metadata or {})),
                            "transaction")
        except PylottoError as err:
            raise _rewrapped(err, "error while executing state transaction",
                             "state.transaction", store=store_name) from err
        if relay is not None and records:
            relay.committed(records)

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
        if not (isinstance(store, QueryableStateStore) and store.has(Feature.QUERY_API)):
            raise Unsupported(f"state store {store_name} doesn't support query",
                              where="state.queryable", store=store_name)
        try:
            parsed = parse_query(query_json)
        except PylottoError as err:
            raise err.at("state.query", store=store_name,
                         detail=f"failed to parse JSON query body: {err.message}") from None
        scope = prefixed(prefix, "")
        try:
            result = await self.call(store_name, lambda: store.query(
                replace(parsed, key_prefix=scope), dict(metadata or {})), "query")
        except PylottoError as err:
            raise _rewrapped(err, f"failed querying state store {store_name}",
                             "state.query", store=store_name) from err
        items = [replace(item, key=item.key[len(scope):]) for item in result.items
                 if item.key.startswith(scope) and not _internal(item.key[len(scope):])]
        return QueryResult(items=items, token=result.token)
