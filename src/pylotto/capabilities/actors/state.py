"""Actor state, straight on the actor state store (docs/design/actors.md §3 "State", §4.1
"Fencing of state writes"; daprd's pkg/actors/state/state.go).

- Keys go to the store as ``<appid>||<type>||<id>||<key>`` (names.py): the component's
  ``keyPrefix`` is *not* applied, and every operation carries the metadata ``partitionKey`` =
  ``<appid>||<type>||<id>``. Calls go through the state capability's resiliency and metrics
  (:meth:`StateCapability.call`), and the component is looked up by name on every call, so a
  hot-reloaded store is picked up.
- The store must declare ETAG and TRANSACTIONAL, else every call (and the runtime's start) is
  refused with NotConfigured at ``actors.runtime``, in daprd's words.
- Transactions: ``upsert`` and ``delete`` (anything else: Unsupported at
  ``actors.state_operation``); per-key ``ttlInSeconds`` metadata where the store has TTL.
- **Fencing.** On activation the owner writes ``_actors.<appid>.owner.<type>||<id>`` = ``{owner,
  epoch}`` and keeps its etag (:meth:`ActorState.fence`). Every transaction of that actor also
  upserts the key under that etag (:meth:`ActorState.transact`): a sidecar that lost the actor
  meanwhile (another one activated it and rewrote the key) fails with NotFound at
  ``actors.instance`` and must deactivate. The key is never deleted: with Redis and ZooKeeper
  a write to a missing key takes any etag, so a deleted key would let a stale owner through.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pylotto.capabilities.actors.api import ActorRef, StateOperation
from pylotto.capabilities.actors.names import PARTITION_KEY, actor_prefix, owner_key, state_key
from pylotto.capabilities.state import StateCapability
from pylotto.components.state.base import (
    Consistency,
    DeleteRequest,
    Feature,
    SetRequest,
    TransactionalStateStore,
    TransactionOp,
)
from pylotto.core.errors import (
    EtagMismatch,
    InvalidArgument,
    NotConfigured,
    NotFound,
    PylottoError,
    Unsupported,
)
from pylotto.core.metadata import MAX_TTL_SECONDS, TTL_IN_SECONDS, parse_ttl_seconds

UPSERT = "upsert"
DELETE = "delete"

NOT_CONFIGURED = ("actors: state store does not exist or incorrectly configured. Have you set "
                  "the property '{\"name\": \"actorStateStore\", \"value\": \"true\"}' in your "
                  "state store component file?")
"""daprd's ``errStateStoreNotConfigured``."""

RUNTIME_NOT_FOUND = ("the state store is not configured to use the actor runtime. Have you set "
                     "the - name: actorStateStore value: \"true\" in your state store component "
                     "file?")
"""daprd's ``ErrActorRuntimeNotFound``."""

INSTANCE_MISSING = "actor instance is missing"


def instance_missing(actor: ActorRef, why: str = "") -> NotFound:
    return NotFound(INSTANCE_MISSING, where="actors.instance", detail=why or INSTANCE_MISSING,
                    actor=actor.key)


def qualifies(store: object) -> bool:
    """The store can hold actor state: transactional, with etags."""
    return (isinstance(store, TransactionalStateStore) and store.has(Feature.ETAG)
            and store.has(Feature.TRANSACTIONAL))


def _same_record(stored: bytes, ours: bytes) -> bool:
    """The owner record read back is the one written (a store may re-serialise JSON)."""
    if stored == ours:
        return True
    try:
        return bool(json.loads(stored) == json.loads(ours))
    except ValueError:
        return False


@dataclass(frozen=True, slots=True)
class Fence:
    """This sidecar's claim on one actor's state: the owner key's value and etag."""

    value: bytes
    etag: str


class ActorState:
    """Actor state of app ``app_id`` in state store ``store_name`` of ``state``; ``owner``
    names this sidecar in the fencing records."""

    def __init__(self, state: StateCapability, store_name: str, app_id: str, *,
                 owner: str = "") -> None:
        self.state, self.store_name, self.app_id = state, store_name, app_id
        self.owner = owner or uuid.uuid4().hex

    def store(self) -> TransactionalStateStore:
        """The component, checked (NotConfigured at ``actors.runtime`` when it is gone or
        cannot hold actor state)."""
        try:
            store = self.state.components.get(self.store_name)
        except PylottoError as err:
            raise NotConfigured(RUNTIME_NOT_FOUND, where="actors.runtime",
                                detail=err.message, store=self.store_name) from None
        if not qualifies(store):
            missing = [f for f in (Feature.ETAG, Feature.TRANSACTIONAL) if not store.has(f)]
            raise NotConfigured(
                f"{NOT_CONFIGURED} (state store {self.store_name} lacks "
                f"{' and '.join(missing) or 'transactions'})",
                where="actors.runtime", detail=NOT_CONFIGURED, store=self.store_name)
        assert isinstance(store, TransactionalStateStore)
        return store

    def _metadata(self, actor: ActorRef) -> dict[str, str]:
        return {PARTITION_KEY: actor_prefix(self.app_id, actor)}

    # ---- reads -------------------------------------------------------------------------------

    async def get(self, actor: ActorRef, key: str) -> tuple[bytes | None, dict[str, str]]:
        """The value of ``key`` (None: absent) and the store's metadata for it."""
        store = self.store()
        stored = state_key(self.app_id, actor, key)
        metadata = self._metadata(actor)
        try:
            got = await self.state.call(self.store_name, lambda: store.get(
                stored, Consistency.UNSPECIFIED, metadata))
        except PylottoError as err:
            raise type(err)(f"error getting actor state: {err.message}",
                            where="actors.state_get", detail=err.message,
                            store=self.store_name) from err
        if got is None:
            return None, {}
        return got.value, dict(got.metadata)

    # ---- writes ------------------------------------------------------------------------------

    def _ttl(self, store: TransactionalStateStore, metadata: Mapping[str, str]) -> int | None:
        raw = metadata.get(TTL_IN_SECONDS)
        if raw is None:
            return None
        try:
            ttl = parse_ttl_seconds(raw, minimum=-MAX_TTL_SECONDS)
        except InvalidArgument as err:
            raise err.at("actors.state_transaction", detail=err.message) from None
        if not store.has(Feature.TTL):
            raise Unsupported(f"state store {self.store_name} doesn't support {TTL_IN_SECONDS}",
                              where="actors.state_transaction", store=self.store_name,
                              detail=f"state store {self.store_name} doesn't support "
                              f"{TTL_IN_SECONDS}")
        return ttl

    def _requests(self, store: TransactionalStateStore, actor: ActorRef,
                  operations: Sequence[StateOperation]) -> list[TransactionOp]:
        base = self._metadata(actor)
        requests: list[TransactionOp] = []
        for op in operations:
            if op.operation not in (UPSERT, DELETE):
                text = f"operation type {op.operation} not supported"
                raise Unsupported(text, where="actors.state_operation", detail=text,
                                  operation=op.operation, store=self.store_name)
            if not op.key:
                raise InvalidArgument("missing key", where="actors.state_transaction",
                                      detail="missing key")
            key = state_key(self.app_id, actor, op.key)
            metadata = {**op.metadata, **base}
            if op.operation == UPSERT:
                requests.append(SetRequest(key=key, value=bytes(op.value),
                                           ttl_seconds=self._ttl(store, op.metadata),
                                           metadata=metadata))
            else:
                requests.append(DeleteRequest(key=key, metadata=metadata))
        return requests

    async def transact(self, actor: ActorRef, operations: Sequence[StateOperation],
                       fence: Fence | None = None) -> Fence | None:
        """Apply ``operations`` all-or-nothing. With ``fence``, only while it still holds
        (else NotFound at ``actors.instance``); returns the fence to use next (None: lost after
        this commit, or no fence given)."""
        store = self.store()
        requests = self._requests(store, actor, operations)
        if not requests:
            return fence
        metadata = self._metadata(actor)
        if fence is not None:
            requests.append(SetRequest(key=owner_key(self.app_id, actor), value=fence.value,
                                       etag=fence.etag, metadata=dict(metadata)))
        try:
            await self.state.call(self.store_name, lambda: store.multi(requests, metadata))
        except EtagMismatch as err:
            if fence is None:
                raise type(err)(f"error saving actor transaction state: {err.message}",
                                where="actors.state_transaction", detail=err.message,
                                store=self.store_name) from err
            raise instance_missing(actor, "another sidecar activated the actor") from err
        except PylottoError as err:
            raise type(err)(f"error saving actor transaction state: {err.message}",
                            where="actors.state_transaction", detail=err.message,
                            store=self.store_name) from err
        if fence is None:
            return None
        return await self._read_fence(store, actor, fence.value)

    # ---- fencing -----------------------------------------------------------------------------

    async def fence(self, actor: ActorRef) -> Fence | None:
        """Claim ``actor``'s state for this sidecar (on activation): write the owner key and
        keep its etag. None when another sidecar rewrote it right after (lost already)."""
        store = self.store()
        value = json.dumps({"owner": self.owner, "epoch": uuid.uuid4().hex},
                           separators=(",", ":")).encode()
        key = owner_key(self.app_id, actor)
        metadata = self._metadata(actor)
        request = SetRequest(key=key, value=value, metadata=metadata)
        try:
            await self.state.call(self.store_name, lambda: store.set(request))
        except PylottoError as err:
            raise type(err)(f"cannot activate actor {actor.key}: {err.message}",
                            where="actors.invoke", detail=f"cannot claim actor {actor.key}: "
                            f"{err.message}", store=self.store_name) from err
        return await self._read_fence(store, actor, value)

    async def _read_fence(self, store: TransactionalStateStore, actor: ActorRef,
                          value: bytes) -> Fence | None:
        key = owner_key(self.app_id, actor)
        metadata = self._metadata(actor)
        try:
            got = await self.state.call(self.store_name, lambda: store.get(
                key, Consistency.STRONG, metadata))
        except PylottoError as err:
            raise type(err)(f"cannot read the owner of actor {actor.key}: {err.message}",
                            where="actors.invoke", detail=err.message,
                            store=self.store_name) from err
        if got is None or not got.etag or not _same_record(got.value, value):
            return None
        return Fence(value, got.etag)

    async def owner_of(self, actor: ActorRef) -> str | None:
        """The sidecar the fencing record names for ``actor`` (None: never activated)."""
        store = self.store()
        got = await self.state.call(self.store_name, lambda: store.get(
            owner_key(self.app_id, actor), Consistency.STRONG, self._metadata(actor)))
        if got is None or not got.value:
            return None
        owner = json.loads(got.value).get("owner")
        return owner if isinstance(owner, str) else None
