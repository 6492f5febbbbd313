"""A state store served by a pluggable component (``dapr.proto.components.v1.StateStore``).

Features come from the component's Features RPC. TRANSACTIONAL is honoured only when the
component also serves ``TransactionalStateStore``. Etag errors: the component answers
FAILED_PRECONDITION or ABORTED for a mismatch and INVALID_ARGUMENT for an etag it cannot parse.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import grpc
import grpc.aio

from pylotto.components.pluggable.channel import (
    KEEP_UNKNOWN_KEYS,
    PluggableComponent,
    PluggableSettings,
)
from pylotto.components.state.base import (
    BulkGetItem,
    Concurrency,
    Consistency,
    DeleteRequest,
    GetResult,
    SetRequest,
    StateSettings,
    TransactionalStateStore,
    TransactionOp,
)
from pylotto.core.errors import EtagInvalid, EtagMismatch, PylottoError
from pylotto.core.metadata import ComponentSettings
from pylotto.core.types import Metadata
from pylotto.proto.components import common_pb2, state_pb2, state_pb2_grpc

SERVICE = "dapr.proto.components.v1.StateStore"
TRANSACTIONAL_SERVICE = "dapr.proto.components.v1.TransactionalStateStore"

_CONCURRENCY = {
    Concurrency.UNSPECIFIED: state_pb2.StateOptions.CONCURRENCY_UNSPECIFIED,
    Concurrency.FIRST_WRITE: state_pb2.StateOptions.CONCURRENCY_FIRST_WRITE,
    Concurrency.LAST_WRITE: state_pb2.StateOptions.CONCURRENCY_LAST_WRITE,
}
_CONSISTENCY = {
    Consistency.UNSPECIFIED: state_pb2.StateOptions.CONSISTENCY_UNSPECIFIED,
    Consistency.EVENTUAL: state_pb2.StateOptions.CONSISTENCY_EVENTUAL,
    Consistency.STRONG: state_pb2.StateOptions.CONSISTENCY_STRONG,
}


class PluggableStateSettings(PluggableSettings, StateSettings):
    """``socketPath``, ``timeout`` and the state store keys (``keyPrefix``, ``ttlInSeconds``)."""

    model_config = KEEP_UNKNOWN_KEYS


def _etag(value: str | None) -> state_pb2.Etag | None:
    return state_pb2.Etag(value=value) if value is not None else None


def _set_message(request: SetRequest) -> state_pb2.SetRequest:
    metadata = dict(request.metadata)
    if request.ttl_seconds is not None:
        metadata["ttlInSeconds"] = str(request.ttl_seconds)
    return state_pb2.SetRequest(
        key=request.key, value=request.value, etag=_etag(request.etag), metadata=metadata,
        options=state_pb2.StateOptions(concurrency=_CONCURRENCY[request.concurrency],
                                       consistency=_CONSISTENCY[request.consistency]))


def _delete_message(request: DeleteRequest) -> state_pb2.DeleteRequest:
    return state_pb2.DeleteRequest(
        key=request.key, etag=_etag(request.etag), metadata=dict(request.metadata),
        options=state_pb2.StateOptions(concurrency=_CONCURRENCY[request.concurrency],
                                       consistency=_CONSISTENCY[request.consistency]))


class PluggableStateStore(PluggableComponent, TransactionalStateStore):
    """Calls a remote StateStore; set ``socketPath`` or use a discovered ``state.<socket>``.
    TRANSACTIONAL counts only if the component also serves TransactionalStateStore."""

    Settings: ClassVar[type[ComponentSettings]] = PluggableStateSettings
    settings: PluggableStateSettings
    service: ClassVar[str] = SERVICE

    async def init(self) -> None:
        services = await self.connect()
        channel = self.channel
        assert channel is not None
        self.stub = state_pb2_grpc.StateStoreStub(channel)
        self.tx_stub = state_pb2_grpc.TransactionalStateStoreStub(channel)
        await self.call(self.stub.Init, state_pb2.InitRequest(metadata=self.metadata_request()))
        features = await self.call(self.stub.Features, common_pb2.FeaturesRequest())
        if TRANSACTIONAL_SERVICE not in services:
            features = common_pb2.FeaturesResponse(
                features=[f for f in features.features if f != "TRANSACTIONAL"])
        self.set_features(features)

    async def ping(self) -> None:
        await self.call(self.stub.Ping, common_pb2.PingRequest())

    def map_error(self, exc: grpc.aio.AioRpcError) -> PylottoError:
        code = exc.code()
        if code in (grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.ABORTED):
            return EtagMismatch(f"state store {self.name}: etag mismatch: {exc.details()}")
        if code is grpc.StatusCode.INVALID_ARGUMENT and "etag" in (exc.details() or "").lower():
            return EtagInvalid(f"state store {self.name}: {exc.details()}")
        return super().map_error(exc)

    async def get(self, key: str, consistency: Consistency, metadata: Metadata) -> GetResult | None:
        got = await self.call(self.stub.Get, state_pb2.GetRequest(
            key=key, metadata=dict(metadata), consistency=_CONSISTENCY[consistency]))
        if not got.data and not got.HasField("etag"):
            return None
        etag = got.etag.value if got.HasField("etag") and got.etag.value else None
        return GetResult(got.data, etag, dict(got.metadata))

    async def bulk_get(self, keys: Sequence[str], metadata: Metadata) -> list[BulkGetItem]:
        got = await self.call(self.stub.BulkGet, state_pb2.BulkGetRequest(
            items=[state_pb2.GetRequest(key=k, metadata=dict(metadata)) for k in keys]))
        by_key = {item.key: item for item in got.items}
        items = []
        for key in keys:
            item = by_key.get(key)
            if item is None:
                items.append(BulkGetItem(key=key))
                continue
            etag = item.etag.value if item.HasField("etag") and item.etag.value else None
            items.append(BulkGetItem(key, item.data, etag, item.error, dict(item.metadata)))
        return items

    async def set(self, request: SetRequest) -> None:
        await self.call(self.stub.Set, _set_message(request))

    async def delete(self, request: DeleteRequest) -> None:
        await self.call(self.stub.Delete, _delete_message(request))

    async def bulk_set(self, requests: Sequence[SetRequest]) -> None:
        await self.call(self.stub.BulkSet, state_pb2.BulkSetRequest(
            items=[_set_message(r) for r in requests]))

    async def bulk_delete(self, requests: Sequence[DeleteRequest]) -> None:
        await self.call(self.stub.BulkDelete, state_pb2.BulkDeleteRequest(
            items=[_delete_message(r) for r in requests]))

    async def multi(self, operations: Sequence[TransactionOp], metadata: Metadata) -> None:
        ops = [state_pb2.TransactionalStateOperation(set=_set_message(op))
               if isinstance(op, SetRequest)
               else state_pb2.TransactionalStateOperation(delete=_delete_message(op))
               for op in operations]
        await self.call(self.tx_stub.Transact, state_pb2.TransactionalStateRequest(
            operations=ops, metadata=dict(metadata)))
