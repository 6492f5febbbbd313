"""``AsyncClient``: one typed coroutine per RPC of the Layotto runtime API."""

from __future__ import annotations

import asyncio
import inspect
import json
import random
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Mapping, Sequence
from types import TracebackType
from typing import Any, TypeVar

import grpc
from google.protobuf import any_pb2

from pylotto.client import _wire, endpoint
from pylotto.client.locking import Lock
from pylotto.client.retry import RetryPolicy
from pylotto.client.subscription import Subscription
from pylotto.client.types import (
    BindingResult,
    BulkStateItem,
    ClientError,
    Concurrency,
    ConfigurationItem,
    Consistency,
    EtagConflict,
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
Updater = Callable[[bytes | None], Payload | Awaitable[Payload]]
"""``update_state``'s function: the current value (None: absent) → the new one."""

FILE_CHUNK_BYTES = 100 * 1024
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
ETAG_MISMATCH = grpc.StatusCode.ABORTED
"""What a save answers when the etag no longer matches (or first-write found the key)."""
DEFAULT_ADDRESS = endpoint.DEFAULT_ADDRESS


def default_address() -> str:
    """The address the environment names (see :mod:`pylotto.client.endpoint`)."""
    return endpoint.from_environment().target


async def checked(call: Awaitable[T]) -> T:
    """Await a gRPC call; a refusal becomes ClientError with its status code."""
    try:
        return await call
    except grpc.aio.AioRpcError as err:
        raise ClientError(err.code(), err.details() or "") from None


class AsyncClient:
    """Talks to a pylotto (or Layotto) sidecar. Use ``async with AsyncClient() as client:``.

    ``address``: ``host:port``, ``https://host:port`` or ``host:port?tls=true`` (TLS), a
    ``unix:`` path; default from the environment (:mod:`pylotto.client.endpoint`).
    ``api_token``: sent as ``dapr-api-token`` on every call (default ``$DAPR_API_TOKEN``).
    ``tls``: force TLS on or off; ``root_certificates``: PEM of the CA that signed the sidecar's
    certificate (default: the system's, or ``$GRPC_DEFAULT_SSL_ROOTS_FILE_PATH``).
    ``retry``: the :class:`RetryPolicy` for transient failures (default: 3 attempts of the
    calls safe to repeat, on UNAVAILABLE); ``RetryPolicy(max_attempts=1)`` turns it off.
    ``timeout``: seconds per attempt of a unary call.
    """

    def __init__(self, address: str | None = None, *, timeout: float | None = 30.0,
                 api_token: str | None = None, tls: bool | None = None,
                 root_certificates: bytes | None = None,
                 retry: RetryPolicy | None = None) -> None:
        target = endpoint.parse(address) if address else endpoint.from_environment()
        self.address = target.target
        self.tls = target.tls if tls is None else tls
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        token = endpoint.token_from_environment() if api_token is None else api_token
        self._metadata: tuple[tuple[str, str], ...] = (
            ((endpoint.TOKEN_HEADER, token),) if token else ())
        options = [("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                   ("grpc.max_send_message_length", MAX_MESSAGE_BYTES)]
        if self.tls:
            credentials = grpc.ssl_channel_credentials(root_certificates=root_certificates)
            self._channel = grpc.aio.secure_channel(self.address, credentials, options=options)
        else:
            self._channel = grpc.aio.insecure_channel(self.address, options=options)
        self._stub = runtime_pb2_grpc.RuntimeStub(self._channel)
        self._query_stub = state_query_pb2_grpc.StateQueryStub(self._channel)

    async def _unary(self, rpc: str, request: Any, *, idempotent: bool | None = None) -> Any:
        """One unary call with the token, the timeout and the retry policy (``idempotent``:
        whether this call may be repeated; default: whether ``rpc`` may be)."""
        stub = self._query_stub if rpc == "QueryState" else self._stub
        method = getattr(stub, rpc)
        return await self.retry.run(rpc, lambda: checked(
            method(request, timeout=self.timeout, metadata=self._metadata)), idempotent)

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
        reply: runtime_pb2.SayHelloResponse = await self._unary("SayHello", request)
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
        reply = await self._unary("InvokeService", request)
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
        reply = await self._unary("GetState", request)
        return StateItem(key, reply.data, reply.etag or None, dict(reply.metadata))

    async def get_bulk_state(
        self, store_name: str, keys: Sequence[str], *, parallelism: int = 0,
        metadata: Mapping[str, str] | None = None,
    ) -> list[BulkStateItem]:
        request = runtime_pb2.GetBulkStateRequest(
            store_name=store_name, keys=list(keys), parallelism=parallelism,
            metadata=_wire.metadata(metadata),
        )
        reply = await self._unary("GetBulkState", request)
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
        reply = await self._unary("QueryState", request)
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

    async def update_state(
        self, store_name: str, key: str, update: Updater, *, attempts: int = 20,
        metadata: Mapping[str, str] | None = None,
    ) -> bytes:
        """Read-modify-write ``key`` safely against concurrent writers: ``update`` gets the
        current value (None when the key is absent) and returns the new one; it is saved
        only if nobody wrote the key meanwhile (its etag; first-write when absent), else
        read and ``update`` are done again, up to ``attempts`` times (then
        :class:`EtagConflict`). Returns the bytes saved. ``update`` may run more than once:
        keep side effects out of it. The store must support etags."""
        for attempt in range(attempts):
            current = await self.get_state(store_name, key, metadata=metadata)
            exists = current.etag is not None
            value = update(current.value if exists else None)
            if inspect.isawaitable(value):
                value = await value
            body = encode_payload(value)[0]
            try:
                await self.save_state(store_name, key, body, etag=current.etag,
                                      concurrency=Concurrency.FIRST_WRITE, metadata=metadata)
            except ClientError as err:
                if err.code != ETAG_MISMATCH:
                    raise
                await asyncio.sleep(random.random() * min(0.2, 0.005 * 2 ** attempt))
                continue
            return body
        raise EtagConflict(store_name, key, attempts)

    async def save_bulk_state(self, store_name: str, items: Sequence[StateItem]) -> None:
        request = runtime_pb2.SaveStateRequest(
            store_name=store_name, states=[_wire.state_item(item) for item in items]
        )
        # a conditional save repeated after it took effect would fail as a conflict
        conditional = any(i.etag is not None or i.concurrency is Concurrency.FIRST_WRITE
                          for i in items)
        await self._unary("SaveState", request, idempotent=not conditional)

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
        await self._unary("DeleteState", request, idempotent=etag is None)

    async def delete_bulk_state(
        self, store_name: str, items: Sequence[StateItem | str]
    ) -> None:
        states = [_wire.state_item(StateItem(i) if isinstance(i, str) else i) for i in items]
        request = runtime_pb2.DeleteBulkStateRequest(store_name=store_name, states=states)
        await self._unary("DeleteBulkState", request,
                          idempotent=not any(state.HasField("etag") for state in states))

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
        await self._unary("ExecuteStateTransaction", request)

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
        await self._unary("PublishEvent", request)

    def subscribe(
        self, pubsub_name: str, topic: str, *, metadata: Mapping[str, str] | None = None,
        dead_letter_topic: str | None = None, resubscribe: bool = True,
    ) -> Subscription:
        """A streaming subscription (no callback server needed):

        ``async with client.subscribe("pubsub", "orders") as sub:
              async for event in sub: ...; await sub.ack(event)``

        A stream the sidecar ends (a reload of the pubsub, a restart) is subscribed again
        unless ``resubscribe=False``.
        """
        initial = runtime_pb2.SubscribeTopicEventsRequestInitial(
            pubsub_name=pubsub_name, topic=topic, metadata=_wire.metadata(metadata)
        )
        if dead_letter_topic is not None:
            initial.dead_letter_topic = dead_letter_topic
        return Subscription(self._stub, initial, self._metadata, resubscribe=resubscribe)

    # ---- lock ----------------------------------------------------------------------------

    async def try_lock(self, store_name: str, resource_id: str, owner: str, expire: int) -> bool:
        request = runtime_pb2.TryLockRequest(
            store_name=store_name, resource_id=resource_id, lock_owner=owner, expire=expire
        )
        reply: runtime_pb2.TryLockResponse = await self._unary("TryLock", request)
        return reply.success

    def lock(self, store_name: str, resource_id: str, owner: str | None = None, *,
             expire: int, wait: float = 0.0, keep_alive: bool = False) -> Lock:
        """The lock as a context manager, released when the block ends (even by an error)::

            async with client.lock("redis", "order-42", expire=10, wait=5):
                ...  # only one owner at a time runs this

        ``owner``: default a random one; ``wait``: seconds to keep trying while it is held
        elsewhere, then :class:`LockNotAcquired`; ``keep_alive``: renew it while the block
        runs (LockKeepAlive every ``expire``/3 s)."""
        return Lock(self, store_name, resource_id, owner, expire=expire, wait=wait,
                    keep_alive=keep_alive)

    async def unlock(self, store_name: str, resource_id: str, owner: str) -> LockStatus:
        request = runtime_pb2.UnlockRequest(
            store_name=store_name, resource_id=resource_id, lock_owner=owner
        )
        reply = await self._unary("Unlock", request)
        return LockStatus(reply.status)

    async def lock_keep_alive(
        self, store_name: str, resource_id: str, owner: str, expire: int
    ) -> LockStatus:
        request = runtime_pb2.LockKeepAliveRequest(
            store_name=store_name, resource_id=resource_id, lock_owner=owner, expire=expire
        )
        reply = await self._unary("LockKeepAlive", request)
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
        reply: runtime_pb2.GetNextIdResponse = await self._unary("GetNextId", request)
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
        reply = await self._unary("GetConfiguration", request)
        return _wire.configuration_items(reply.items)

    async def save_configuration(
        self, store_name: str, items: Sequence[ConfigurationItem], *, app_id: str = "",
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        request = runtime_pb2.SaveConfigurationRequest(
            store_name=store_name, app_id=app_id, metadata=_wire.metadata(metadata),
            items=[_wire.configuration_item(item) for item in items],
        )
        await self._unary("SaveConfiguration", request)

    async def delete_configuration(
        self, store_name: str, keys: Sequence[str], *, app_id: str = "", group: str = "",
        label: str = "", metadata: Mapping[str, str] | None = None,
    ) -> None:
        request = runtime_pb2.DeleteConfigurationRequest(
            store_name=store_name, app_id=app_id, group=group, label=label, keys=list(keys),
            metadata=_wire.metadata(metadata),
        )
        await self._unary("DeleteConfiguration", request)

    async def subscribe_configuration(
        self, store_name: str, keys: Sequence[str] = (), *, app_id: str = "", group: str = "",
        label: str = "", metadata: Mapping[str, str] | None = None,
    ) -> AsyncIterator[list[ConfigurationItem]]:
        """Yield the changed items of every change, in order, until the caller stops."""
        request = runtime_pb2.SubscribeConfigurationRequest(
            store_name=store_name, app_id=app_id, group=group, label=label, keys=list(keys),
            metadata=_wire.metadata(metadata),
        )
        call = self._stub.SubscribeConfiguration(metadata=self._metadata)
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
        call = self._stub.GetFile(request, timeout=self.timeout, metadata=self._metadata)
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

        await checked(self._stub.PutFile(requests(), timeout=self.timeout,
                                         metadata=self._metadata))

    async def list_file(
        self, store_name: str, directory: str = "", *, page_size: int = 0, marker: str = "",
        metadata: Mapping[str, str] | None = None,
    ) -> FileList:
        request = runtime_pb2.ListFileRequest(
            request=runtime_pb2.FileRequest(
                store_name=store_name, name=directory, metadata=_wire.metadata(metadata)),
            page_size=page_size, marker=marker,
        )
        reply = await self._unary("ListFile", request)
        return FileList([_wire.file_info(f) for f in reply.files], reply.marker,
                        reply.is_truncated)

    async def del_file(
        self, store_name: str, name: str, metadata: Mapping[str, str] | None = None
    ) -> None:
        request = runtime_pb2.DelFileRequest(request=runtime_pb2.FileRequest(
            store_name=store_name, name=name, metadata=_wire.metadata(metadata)))
        await self._unary("DelFile", request)

    async def get_file_meta(
        self, store_name: str, name: str, metadata: Mapping[str, str] | None = None
    ) -> FileMeta:
        request = runtime_pb2.GetFileMetaRequest(request=runtime_pb2.FileRequest(
            store_name=store_name, name=name, metadata=_wire.metadata(metadata)))
        reply = await self._unary("GetFileMeta", request)
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
        reply = await self._unary("InvokeBinding", request)
        return BindingResult(reply.data, dict(reply.metadata))

    # ---- secrets -------------------------------------------------------------------------

    async def get_secret(
        self, store_name: str, key: str, metadata: Mapping[str, str] | None = None
    ) -> dict[str, str]:
        request = runtime_pb2.GetSecretRequest(
            store_name=store_name, key=key, metadata=_wire.metadata(metadata))
        reply = await self._unary("GetSecret", request)
        return dict(reply.data)

    async def get_bulk_secret(
        self, store_name: str, metadata: Mapping[str, str] | None = None
    ) -> dict[str, dict[str, str]]:
        request = runtime_pb2.GetBulkSecretRequest(
            store_name=store_name, metadata=_wire.metadata(metadata))
        reply = await self._unary("GetBulkSecret", request)
        return {name: dict(value.secrets) for name, value in reply.data.items()}


async def _chunks(data: bytes | AsyncIterable[bytes]) -> AsyncIterator[bytes]:
    if isinstance(data, bytes):
        for start in range(0, len(data), FILE_CHUNK_BYTES):
            yield data[start : start + FILE_CHUNK_BYTES]
        return
    async for chunk in data:
        yield chunk
