"""``AsyncClient``: one typed coroutine per RPC of the Layotto runtime API."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Mapping, Sequence
from types import TracebackType
from typing import Any, TypeVar

import grpc
from google.protobuf import any_pb2

from pylotto.client import _wire
from pylotto.client.subscription import Subscription
from pylotto.client.types import (
    BindingResult,
    BulkStateItem,
    ClientError,
    Concurrency,
    ConfigurationItem,
    Consistency,
    FileList,
    FileMeta,
    InvokeResult,
    LockStatus,
    Payload,
    QueryResult,
    StateItem,
    TransactionOperation,
    encode_payload,
)
from pylotto.proto.extensions import state_query_pb2, state_query_pb2_grpc
from pylotto.proto.layotto import runtime_pb2, runtime_pb2_grpc

T = TypeVar("T")

DEFAULT_ADDRESS = "127.0.0.1:34904"
FILE_CHUNK_BYTES = 100 * 1024
MAX_MESSAGE_BYTES = 64 * 1024 * 1024


def default_address() -> str:
    """``PYLOTTO_GRPC_ADDRESS``, else Layotto's ``runtime_GRPC_PORT`` on 127.0.0.1, else 34904."""
    if address := os.environ.get("PYLOTTO_GRPC_ADDRESS"):
        return address
    if port := os.environ.get("runtime_GRPC_PORT"):  # noqa: SIM112 - Layotto's name
        return f"127.0.0.1:{port}"
    return DEFAULT_ADDRESS


async def checked(call: Awaitable[T]) -> T:
    """Await a gRPC call; a refusal becomes ClientError with its status code."""
    try:
        return await call
    except grpc.aio.AioRpcError as err:
        raise ClientError(err.code(), err.details() or "") from None


class AsyncClient:
    """Talks to a pylotto (or Layotto) sidecar. Use ``async with AsyncClient() as client:``."""

    def __init__(self, address: str | None = None, *, timeout: float | None = 30.0) -> None:
        self.address = address or default_address()
        self.timeout = timeout
        self._channel = grpc.aio.insecure_channel(
            self.address,
            options=[("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                     ("grpc.max_send_message_length", MAX_MESSAGE_BYTES)],
        )
        self._stub = runtime_pb2_grpc.RuntimeStub(self._channel)
        self._query_stub = state_query_pb2_grpc.StateQueryStub(self._channel)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    async def close(self) -> None:
        await self._channel.close()

    async def wait_ready(self, within: float = 10.0) -> None:
        """Wait until the sidecar's port answers (raises TimeoutError after ``within`` s)."""
        async with asyncio.timeout(within):
            await self._channel.channel_ready()

    # ---- hello ---------------------------------------------------------------------------

    async def say_hello(self, service_name: str = "quick_start_demo", name: str = "") -> str:
        request = runtime_pb2.SayHelloRequest(service_name=service_name, name=name)
        reply: runtime_pb2.SayHelloResponse = await checked(
            self._stub.SayHello(request, timeout=self.timeout))
        return reply.hello

    # ---- service invocation --------------------------------------------------------------

    async def invoke_service(
        self, app_id: str, method: str, data: Payload = b"", *, verb: str = "POST",
        content_type: str | None = None, querystring: str = "",
    ) -> InvokeResult:
        body, default_type = encode_payload(data)
        message = runtime_pb2.CommonInvokeRequest(
            method=method, data=any_pb2.Any(value=body),
            content_type=content_type or default_type,
            http_extension=runtime_pb2.HTTPExtension(
                verb=runtime_pb2.HTTPExtension.Verb.Value(verb.upper()), querystring=querystring
            ),
        )
        request = runtime_pb2.InvokeServiceRequest(id=app_id, message=message)
        reply = await checked(self._stub.InvokeService(request, timeout=self.timeout))
        return InvokeResult(reply.data.value, reply.content_type)

    # ---- state ---------------------------------------------------------------------------

    async def get_state(
        self, store_name: str, key: str, *, consistency: Consistency = Consistency.UNSPECIFIED,
        metadata: Mapping[str, str] | None = None,
    ) -> StateItem:
        request = runtime_pb2.GetStateRequest(
            store_name=store_name, key=key, consistency=consistency.value,  # type: ignore[arg-type]
            metadata=_wire.metadata(metadata),
        )
        reply = await checked(self._stub.GetState(request, timeout=self.timeout))
        return StateItem(key, reply.data, reply.etag or None, dict(reply.metadata))

    async def get_bulk_state(
        self, store_name: str, keys: Sequence[str], *, parallelism: int = 0,
        metadata: Mapping[str, str] | None = None,
    ) -> list[BulkStateItem]:
        request = runtime_pb2.GetBulkStateRequest(
            store_name=store_name, keys=list(keys), parallelism=parallelism,
            metadata=_wire.metadata(metadata),
        )
        reply = await checked(self._stub.GetBulkState(request, timeout=self.timeout))
        return [_wire.bulk_item(item) for item in reply.items]

    async def query_state(
        self, store_name: str, query: Mapping[str, Any] | str, *,
        metadata: Mapping[str, str] | None = None,
    ) -> QueryResult:
        """One page of a state query in Dapr's JSON format (``filter``, ``sort``, ``page``)::

            await client.query_state("orders", {"filter": {"EQ": {"status": "paid"}},
                                                "sort": [{"key": "total", "order": "DESC"}],
                                                "page": {"limit": 20}})

        Pass the result's ``token`` as ``page.token`` for the next page.
        """
        text = query if isinstance(query, str) else json.dumps(query)
        request = state_query_pb2.QueryStateRequest(
            store_name=store_name, query=text, metadata=_wire.metadata(metadata))
        reply = await checked(self._query_stub.QueryState(request, timeout=self.timeout))
        return QueryResult(
            [StateItem(item.key, item.data, item.etag or None) for item in reply.results],
            reply.token,
        )

    async def save_state(
        self, store_name: str, key: str, value: Payload, *, etag: str | None = None,
        concurrency: Concurrency = Concurrency.UNSPECIFIED,
        consistency: Consistency = Consistency.UNSPECIFIED,
        ttl_seconds: int | None = None, metadata: Mapping[str, str] | None = None,
    ) -> None:
        meta = _wire.metadata(metadata)
        if ttl_seconds is not None:
            meta["ttlInSeconds"] = str(ttl_seconds)
        item = StateItem(key, encode_payload(value)[0], etag, meta, concurrency, consistency)
        await self.save_bulk_state(store_name, [item])

    async def save_bulk_state(self, store_name: str, items: Sequence[StateItem]) -> None:
        request = runtime_pb2.SaveStateRequest(
            store_name=store_name, states=[_wire.state_item(item) for item in items]
        )
        await checked(self._stub.SaveState(request, timeout=self.timeout))

    async def delete_state(
        self, store_name: str, key: str, *, etag: str | None = None,
        concurrency: Concurrency = Concurrency.UNSPECIFIED,
        consistency: Consistency = Consistency.UNSPECIFIED,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        request = runtime_pb2.DeleteStateRequest(
            store_name=store_name, key=key, metadata=_wire.metadata(metadata),
            options=runtime_pb2.StateOptions(
                concurrency=concurrency.value,  # type: ignore[arg-type]
                consistency=consistency.value,  # type: ignore[arg-type]
            ),
        )
        if etag is not None:
            request.etag.value = etag
        await checked(self._stub.DeleteState(request, timeout=self.timeout))

    async def delete_bulk_state(
        self, store_name: str, items: Sequence[StateItem | str]
    ) -> None:
        states = [_wire.state_item(StateItem(i) if isinstance(i, str) else i) for i in items]
        request = runtime_pb2.DeleteBulkStateRequest(store_name=store_name, states=states)
        await checked(self._stub.DeleteBulkState(request, timeout=self.timeout))

    async def execute_state_transaction(
        self, store_name: str, operations: Sequence[TransactionOperation],
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        request = runtime_pb2.ExecuteStateTransactionRequest(
            storeName=store_name, metadata=_wire.metadata(metadata),
            operations=[
                runtime_pb2.TransactionalStateOperation(
                    operationType=op.operation, request=_wire.state_item(op.item)
                )
                for op in operations
            ],
        )
        await checked(self._stub.ExecuteStateTransaction(request, timeout=self.timeout))

    # ---- pub/sub -------------------------------------------------------------------------

    async def publish_event(
        self, pubsub_name: str, topic: str, data: Payload, *, content_type: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        body, default_type = encode_payload(data)
        request = runtime_pb2.PublishEventRequest(
            pubsub_name=pubsub_name, topic=topic, data=body,
            data_content_type=content_type or default_type, metadata=_wire.metadata(metadata),
        )
        await checked(self._stub.PublishEvent(request, timeout=self.timeout))

    def subscribe(
        self, pubsub_name: str, topic: str, *, metadata: Mapping[str, str] | None = None,
        dead_letter_topic: str | None = None,
    ) -> Subscription:
        """A streaming subscription (no callback server needed):

        ``async with client.subscribe("pubsub", "orders") as sub:
              async for event in sub: ...; await sub.ack(event)``
        """
        initial = runtime_pb2.SubscribeTopicEventsRequestInitial(
            pubsub_name=pubsub_name, topic=topic, metadata=_wire.metadata(metadata)
        )
        if dead_letter_topic is not None:
            initial.dead_letter_topic = dead_letter_topic
        return Subscription(self._stub, initial)

    # ---- lock ----------------------------------------------------------------------------

    async def try_lock(self, store_name: str, resource_id: str, owner: str, expire: int) -> bool:
        request = runtime_pb2.TryLockRequest(
            store_name=store_name, resource_id=resource_id, lock_owner=owner, expire=expire
        )
        reply: runtime_pb2.TryLockResponse = await checked(
            self._stub.TryLock(request, timeout=self.timeout))
        return reply.success

    async def unlock(self, store_name: str, resource_id: str, owner: str) -> LockStatus:
        request = runtime_pb2.UnlockRequest(
            store_name=store_name, resource_id=resource_id, lock_owner=owner
        )
        reply = await checked(self._stub.Unlock(request, timeout=self.timeout))
        return LockStatus(reply.status)

    async def lock_keep_alive(
        self, store_name: str, resource_id: str, owner: str, expire: int
    ) -> LockStatus:
        request = runtime_pb2.LockKeepAliveRequest(
            store_name=store_name, resource_id=resource_id, lock_owner=owner, expire=expire
        )
        reply = await checked(self._stub.LockKeepAlive(request, timeout=self.timeout))
        return LockStatus(reply.status)

    # ---- sequencer -----------------------------------------------------------------------

    async def get_next_id(
        self, store_name: str, key: str, *, strong: bool = False,
        metadata: Mapping[str, str] | None = None,
    ) -> int:
        options = runtime_pb2.SequencerOptions
        increment = options.STRONG if strong else options.WEAK
        request = runtime_pb2.GetNextIdRequest(
            store_name=store_name, key=key, metadata=_wire.metadata(metadata),
            options=runtime_pb2.SequencerOptions(increment=increment),
        )
        reply: runtime_pb2.GetNextIdResponse = await checked(
            self._stub.GetNextId(request, timeout=self.timeout))
        return reply.next_id

    # ---- configuration -------------------------------------------------------------------

    async def get_configuration(
        self, store_name: str, keys: Sequence[str] = (), *, app_id: str = "", group: str = "",
        label: str = "", metadata: Mapping[str, str] | None = None,
    ) -> list[ConfigurationItem]:
        request = runtime_pb2.GetConfigurationRequest(
            store_name=store_name, app_id=app_id, group=group, label=label, keys=list(keys),
            metadata=_wire.metadata(metadata),
        )
        reply = await checked(self._stub.GetConfiguration(request, timeout=self.timeout))
        return _wire.configuration_items(reply.items)

    async def save_configuration(
        self, store_name: str, items: Sequence[ConfigurationItem], *, app_id: str = "",
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        request = runtime_pb2.SaveConfigurationRequest(
            store_name=store_name, app_id=app_id, metadata=_wire.metadata(metadata),
            items=[_wire.configuration_item(item) for item in items],
        )
        await checked(self._stub.SaveConfiguration(request, timeout=self.timeout))

    async def delete_configuration(
        self, store_name: str, keys: Sequence[str], *, app_id: str = "", group: str = "",
        label: str = "", metadata: Mapping[str, str] | None = None,
    ) -> None:
        request = runtime_pb2.DeleteConfigurationRequest(
            store_name=store_name, app_id=app_id, group=group, label=label, keys=list(keys),
            metadata=_wire.metadata(metadata),
        )
        await checked(self._stub.DeleteConfiguration(request, timeout=self.timeout))

    async def subscribe_configuration(
        self, store_name: str, keys: Sequence[str] = (), *, app_id: str = "", group: str = "",
        label: str = "", metadata: Mapping[str, str] | None = None,
    ) -> AsyncIterator[list[ConfigurationItem]]:
        """Yield the changed items of every change, in order, until the caller stops."""
        request = runtime_pb2.SubscribeConfigurationRequest(
            store_name=store_name, app_id=app_id, group=group, label=label, keys=list(keys),
            metadata=_wire.metadata(metadata),
        )
        call = self._stub.SubscribeConfiguration()
        try:
            await checked(call.write(request))
            while True:
                reply = await checked(call.read())
                if reply is grpc.aio.EOF:
                    return
                yield _wire.configuration_items(reply.items)
        finally:
            call.cancel()

    # ---- files ---------------------------------------------------------------------------

    async def iter_file(
        self, store_name: str, name: str, metadata: Mapping[str, str] | None = None
    ) -> AsyncIterator[bytes]:
        """The file's content, chunk by chunk."""
        request = runtime_pb2.GetFileRequest(
            store_name=store_name, name=name, metadata=_wire.metadata(metadata)
        )
        call = self._stub.GetFile(request, timeout=self.timeout)
        try:
            while True:
                reply = await checked(call.read())
                if reply is grpc.aio.EOF:
                    return
                yield reply.data
        finally:
            call.cancel()

    async def get_file(
        self, store_name: str, name: str, metadata: Mapping[str, str] | None = None
    ) -> bytes:
        return b"".join([chunk async for chunk in self.iter_file(store_name, name, metadata)])

    async def put_file(
        self, store_name: str, name: str, data: bytes | AsyncIterable[bytes],
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        meta = _wire.metadata(metadata)

        async def requests() -> AsyncIterator[runtime_pb2.PutFileRequest]:
            first = True
            async for chunk in _chunks(data):
                if first:
                    first = False
                    yield runtime_pb2.PutFileRequest(
                        store_name=store_name, name=name, data=chunk, metadata=meta)
                else:
                    yield runtime_pb2.PutFileRequest(data=chunk)
            if first:  # empty file: one message naming it
                yield runtime_pb2.PutFileRequest(store_name=store_name, name=name, metadata=meta)

        await checked(self._stub.PutFile(requests(), timeout=self.timeout))

    async def list_file(
        self, store_name: str, directory: str = "", *, page_size: int = 0, marker: str = "",
        metadata: Mapping[str, str] | None = None,
    ) -> FileList:
        request = runtime_pb2.ListFileRequest(
            request=runtime_pb2.FileRequest(
                store_name=store_name, name=directory, metadata=_wire.metadata(metadata)),
            page_size=page_size, marker=marker,
        )
        reply = await checked(self._stub.ListFile(request, timeout=self.timeout))
        return FileList([_wire.file_info(f) for f in reply.files], reply.marker,
                        reply.is_truncated)

    async def del_file(
        self, store_name: str, name: str, metadata: Mapping[str, str] | None = None
    ) -> None:
        request = runtime_pb2.DelFileRequest(request=runtime_pb2.FileRequest(
            store_name=store_name, name=name, metadata=_wire.metadata(metadata)))
        await checked(self._stub.DelFile(request, timeout=self.timeout))

    async def get_file_meta(
        self, store_name: str, name: str, metadata: Mapping[str, str] | None = None
    ) -> FileMeta:
        request = runtime_pb2.GetFileMetaRequest(request=runtime_pb2.FileRequest(
            store_name=store_name, name=name, metadata=_wire.metadata(metadata)))
        reply = await checked(self._stub.GetFileMeta(request, timeout=self.timeout))
        meta = {k: list(v.value) for k, v in reply.response.metadata.items()}
        return FileMeta(reply.size, reply.last_modified, meta)

    # ---- bindings ------------------------------------------------------------------------

    async def invoke_binding(
        self, name: str, operation: str, data: Payload = b"",
        metadata: Mapping[str, str] | None = None,
    ) -> BindingResult:
        request = runtime_pb2.InvokeBindingRequest(
            name=name, operation=operation, data=encode_payload(data)[0],
            metadata=_wire.metadata(metadata),
        )
        reply = await checked(self._stub.InvokeBinding(request, timeout=self.timeout))
        return BindingResult(reply.data, dict(reply.metadata))

    # ---- secrets -------------------------------------------------------------------------

    async def get_secret(
        self, store_name: str, key: str, metadata: Mapping[str, str] | None = None
    ) -> dict[str, str]:
        request = runtime_pb2.GetSecretRequest(
            store_name=store_name, key=key, metadata=_wire.metadata(metadata))
        reply = await checked(self._stub.GetSecret(request, timeout=self.timeout))
        return dict(reply.data)

    async def get_bulk_secret(
        self, store_name: str, metadata: Mapping[str, str] | None = None
    ) -> dict[str, dict[str, str]]:
        request = runtime_pb2.GetBulkSecretRequest(
            store_name=store_name, metadata=_wire.metadata(metadata))
        reply = await checked(self._stub.GetBulkSecret(request, timeout=self.timeout))
        return {name: dict(value.secrets) for name, value in reply.data.items()}


async def _chunks(data: bytes | AsyncIterable[bytes]) -> AsyncIterator[bytes]:
    if isinstance(data, bytes):
        for start in range(0, len(data), FILE_CHUNK_BYTES):
            yield data[start : start + FILE_CHUNK_BYTES]
        return
    async for chunk in data:
        yield chunk
