"""``etcd``: a state store in etcd v3, shared by every sidecar using the same cluster.

Metadata: ``endpoints``, ``username``, ``password``, ``keyPrefixPath`` (default ``pylotto``),
``timeout`` (see :mod:`pylotto.components._backends.etcd_client`), plus ``keyPrefix`` and
``ttlInSeconds`` of every store.

Each item is the etcd key ``<keyPrefixPath>/<key>`` holding the value's bytes; its etag is the
key's ``mod_revision``, which only grows, so an etag is never reused. Every write — one item,
a bulk save or delete, a transaction — is one etcd transaction: its compares are the etag
checks (``mod_revision == etag``; a missing key has revision 0, so it never matches) and the
first-write checks (``create_revision == 0``), so all operations apply or none does. TTL is an
etcd lease attached to the key (one per distinct TTL of a batch): etcd deletes the key when it
runs out; reads report ``ttlExpireTime`` from the lease.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from pylotto.components._backends.etcd_client import EtcdClient, EtcdSettings
from pylotto.components._backends.etcd_client import prefix_end as etcd_prefix_end
from pylotto.components.base import ClientComponent, ComponentContext
from pylotto.components.state.base import (
    BatchStateStore,
    BulkGetItem,
    Concurrency,
    Consistency,
    Feature,
    GetResult,
    KeyListingStateStore,
    SetRequest,
    StateSettings,
    TransactionOp,
    etag_number,
    expiry_metadata,
)
from pylotto.core.errors import EtagMismatch
from pylotto.core.types import Metadata
from pylotto.proto.etcd import kv_pb2

TXN_MAX_OPS = 128
"""The operations etcd takes in one transaction (its ``--max-txn-ops`` default)."""


class EtcdStateSettings(StateSettings, EtcdSettings):
    pass


class EtcdStateStore(ClientComponent[EtcdClient], BatchStateStore, KeyListingStateStore):
    Settings = EtcdStateSettings
    settings: EtcdStateSettings
    features = frozenset({Feature.ETAG, Feature.TRANSACTIONAL, Feature.TTL})

    def __init__(self, name: str, settings: EtcdStateSettings, context: ComponentContext) -> None:
        super().__init__(name, settings, context)
        self.client = EtcdClient(settings, f"state store {name}")

    # ---- reads -----------------------------------------------------------------------------

    async def _expiry(self, kv: kv_pb2.KeyValue) -> dict[str, str]:
        if not kv.lease:
            return {}
        left = await self.client.time_to_live(kv.lease)
        return expiry_metadata(time.time() + left) if left > 0 else {}

    async def get(self, key: str, consistency: Consistency, metadata: Metadata) -> GetResult | None:
        reply = await self.client.range(self.client.key(key))
        if not reply.kvs:
            return None
        kv = reply.kvs[0]
        return GetResult(bytes(kv.value), str(kv.mod_revision), await self._expiry(kv))

    async def keys_with_prefix(self, prefix: str, limit: int) -> list[str]:
        start = self.client.key(prefix)
        root = len(self.client.key(""))
        reply = await self.client.range(start, etcd_prefix_end(start))
        return [bytes(kv.key)[root:].decode() for kv in reply.kvs][:limit]

    async def bulk_get(self, keys: Sequence[str], metadata: Metadata) -> list[BulkGetItem]:
        """One etcd transaction per :data:`TXN_MAX_OPS` keys (each one consistent revision;
        etcd refuses a larger transaction)."""
        items: list[BulkGetItem] = []
        for start in range(0, len(keys), TXN_MAX_OPS):
            items += await self._bulk_get_txn(keys[start:start + TXN_MAX_OPS])
        return items

    async def _bulk_get_txn(self, keys: Sequence[str]) -> list[BulkGetItem]:
        reply = await self.client.txn([], [self.client.get(self.client.key(k)) for k in keys])
        items = []
        for key, response in zip(keys, reply.responses, strict=True):
            kvs = response.response_range.kvs
            if not kvs:
                items.append(BulkGetItem(key))
            else:
                kv = kvs[0]
                items.append(BulkGetItem(key, bytes(kv.value), str(kv.mod_revision),
                                         metadata=await self._expiry(kv)))
        return items

    # ---- writes ----------------------------------------------------------------------------

    async def apply(self, operations: Sequence[TransactionOp]) -> None:
        if not operations:
            return
        for op in operations:  # an etag no revision can have fails the batch before any I/O
            if op.etag is not None and not (etag_number(op.etag) or 0) > 0:
                raise EtagMismatch(f"state store {self.name}: etag mismatch for key "
                                   f"{op.key!r}: {op.etag!r} is not the current version")
        final = _final_operations(operations, self.name)
        leases: dict[int, int] = {}
        for op, _ in final:
            if isinstance(op, SetRequest) and (ttl := self._ttl(op)) and ttl not in leases:
                leases[ttl] = await self.client.grant(ttl)
        compares, writes = [], []
        for op, first in final:
            key = self.client.key(op.key)
            if first.etag is not None:
                compares.append(self.client.compare(key, "MOD", int(first.etag)))
            elif isinstance(first, SetRequest) and first.concurrency is Concurrency.FIRST_WRITE:
                compares.append(self.client.compare(key, "CREATE", 0))
            if isinstance(op, SetRequest):
                ttl = self._ttl(op)
                writes.append(self.client.put(key, op.value, leases[ttl] if ttl else 0))
            else:
                writes.append(self.client.delete(key))
        reply = await self.client.txn(compares, writes)
        if not reply.succeeded:
            for lease in leases.values():
                await self.client.revoke(lease)
            keys = ", ".join(repr(op.key) for op, first in final
                             if first.etag is not None or isinstance(first, SetRequest))
            raise EtagMismatch(f"state store {self.name}: etag mismatch or first-write "
                               f"conflict on {keys}: nothing was written")

    def _ttl(self, request: SetRequest) -> int:
        ttl = self.settings.ttl_in_seconds if request.ttl_seconds is None else request.ttl_seconds
        return ttl if ttl is not None and ttl > 0 else 0


def _final_operations(
    operations: Sequence[TransactionOp], store: str
) -> list[tuple[TransactionOp, TransactionOp]]:
    """One (last operation, first operation) per key, in first-seen order: etcd takes a key
    once per transaction. An operation that depends on an earlier one of the same batch is
    checked here: an etag can never match a version written in the same batch, and
    first-write fails after an earlier set."""
    by_key: dict[str, tuple[TransactionOp, TransactionOp]] = {}
    for op in operations:
        if op.key not in by_key:
            by_key[op.key] = (op, op)
            continue
        previous, first = by_key[op.key]
        if op.etag is not None:
            raise EtagMismatch(f"state store {store}: etag mismatch for key {op.key!r}: the "
                               "key is written earlier in the same batch")
        if (isinstance(op, SetRequest) and op.concurrency is Concurrency.FIRST_WRITE
                and isinstance(previous, SetRequest)):
            raise EtagMismatch(f"state store {store}: first-write: key {op.key!r} is written "
                               "earlier in the same batch")
        by_key[op.key] = (op, first)
    return list(by_key.values())
