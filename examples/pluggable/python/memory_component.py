"""A pluggable component in Python: state, pub/sub, output binding, lock and sequencer, in memory.

Serves ``dapr.proto.components.v1.StateStore`` (+ ``TransactionalStateStore``),
``dapr.proto.components.v1.PubSub``, ``dapr.proto.components.v1.OutputBinding`` (operation
``echo``), ``pylotto.proto.components.v1.LockStore`` and
``pylotto.proto.components.v1.Sequencer`` on one Unix socket, with gRPC reflection so the
sidecar can see what it serves. Run it with::

    python examples/pluggable/python/memory_component.py /tmp/dapr-components-sockets/memstore.sock

and the sidecar offers the types ``state.memstore``, ``pubsub.memstore``,
``bindings.memstore``, ``lock.memstore`` and ``sequencer.memstore``.
Etags are decimal versions; a mismatch answers FAILED_PRECONDITION, an etag that is not a number
INVALID_ARGUMENT (the sidecar maps them to its etag errors).
"""

from __future__ import annotations

import asyncio
import collections
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import grpc
import grpc.aio
from grpc_reflection.v1alpha import reflection

from pylotto.proto.components import (
    bindings_pb2,
    bindings_pb2_grpc,
    common_pb2,
    lock_pb2,
    lock_pb2_grpc,
    pubsub_pb2,
    pubsub_pb2_grpc,
    sequencer_pb2,
    sequencer_pb2_grpc,
    state_pb2,
    state_pb2_grpc,
)

FIRST_WRITE = state_pb2.StateOptions.CONCURRENCY_FIRST_WRITE


class EtagError(Exception):
    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class Item:
    value: bytes
    version: int


class Store:
    """The data, shared by the state service (all-or-nothing batches under one lock)."""

    def __init__(self) -> None:
        self.items: dict[str, Item] = {}
        self.versions = 0

    def check(self, key: str, etag: str, first_write: bool) -> None:
        current = self.items.get(key)
        if etag:
            if not etag.isdigit():
                raise EtagError(grpc.StatusCode.INVALID_ARGUMENT, f"invalid etag {etag!r}")
            if current is None or current.version != int(etag):
                raise EtagError(grpc.StatusCode.FAILED_PRECONDITION, f"etag mismatch on {key!r}")
        elif first_write and current is not None:
            raise EtagError(grpc.StatusCode.FAILED_PRECONDITION, f"{key!r} exists (first-write)")

    def apply(self, ops: list[state_pb2.TransactionalStateOperation]) -> None:
        for op in ops:  # check every operation first: all or nothing
            req = op.set if op.HasField("set") else op.delete
            self.check(req.key, req.etag.value, req.options.concurrency == FIRST_WRITE)
        for op in ops:
            if op.HasField("set"):
                self.versions += 1
                self.items[op.set.key] = Item(op.set.value, self.versions)
            else:
                self.items.pop(op.delete.key, None)


class StateService(state_pb2_grpc.StateStoreServicer,
                   state_pb2_grpc.TransactionalStateStoreServicer):
    def __init__(self, store: Store) -> None:
        self.store = store

    async def _apply(self, ops: list[state_pb2.TransactionalStateOperation],
                     context: grpc.aio.ServicerContext) -> None:
        try:
            self.store.apply(ops)
        except EtagError as exc:
            await context.abort(exc.code, str(exc))

    async def Init(self, request, context):  # type: ignore[no-untyped-def]
        return state_pb2.InitResponse()

    async def Features(self, request, context):  # type: ignore[no-untyped-def]
        return common_pb2.FeaturesResponse(features=["ETAG", "TRANSACTIONAL"])

    async def Ping(self, request, context):  # type: ignore[no-untyped-def]
        return common_pb2.PingResponse()

    async def Get(self, request, context):  # type: ignore[no-untyped-def]
        item = self.store.items.get(request.key)
        if item is None:
            return state_pb2.GetResponse()
        return state_pb2.GetResponse(data=item.value, etag=state_pb2.Etag(value=str(item.version)))

    async def BulkGet(self, request, context):  # type: ignore[no-untyped-def]
        items = []
        for get in request.items:
            item = self.store.items.get(get.key)
            items.append(state_pb2.BulkStateItem(key=get.key) if item is None else
                         state_pb2.BulkStateItem(key=get.key, data=item.value,
                                                 etag=state_pb2.Etag(value=str(item.version))))
        return state_pb2.BulkGetResponse(items=items)

    async def Set(self, request, context):  # type: ignore[no-untyped-def]
        await self._apply([state_pb2.TransactionalStateOperation(set=request)], context)
        return state_pb2.SetResponse()

    async def Delete(self, request, context):  # type: ignore[no-untyped-def]
        await self._apply([state_pb2.TransactionalStateOperation(delete=request)], context)
        return state_pb2.DeleteResponse()

    async def BulkSet(self, request, context):  # type: ignore[no-untyped-def]
        await self._apply([state_pb2.TransactionalStateOperation(set=r) for r in request.items],
                          context)
        return state_pb2.BulkSetResponse()

    async def BulkDelete(self, request, context):  # type: ignore[no-untyped-def]
        await self._apply(
            [state_pb2.TransactionalStateOperation(delete=r) for r in request.items], context)
        return state_pb2.BulkDeleteResponse()

    async def Transact(self, request, context):  # type: ignore[no-untyped-def]
        await self._apply(list(request.operations), context)
        return state_pb2.TransactionalStateResponse()


class LockService(lock_pb2_grpc.LockStoreServicer):
    """Leases: resource → (owner, expiry as monotonic time)."""

    def __init__(self) -> None:
        self.leases: dict[str, tuple[str, float]] = {}

    def _live(self, resource: str) -> tuple[str, float] | None:
        lease = self.leases.get(resource)
        if lease is not None and lease[1] <= time.monotonic():
            del self.leases[resource]
            return None
        return lease

    async def Init(self, request, context):  # type: ignore[no-untyped-def]
        return lock_pb2.LockInitResponse()

    async def Features(self, request, context):  # type: ignore[no-untyped-def]
        return common_pb2.FeaturesResponse()

    async def Ping(self, request, context):  # type: ignore[no-untyped-def]
        return common_pb2.PingResponse()

    async def TryLock(self, request, context):  # type: ignore[no-untyped-def]
        if self._live(request.resource_id) is not None:
            return lock_pb2.TryLockResponse(success=False)
        self.leases[request.resource_id] = (request.lock_owner,
                                            time.monotonic() + request.expire)
        return lock_pb2.TryLockResponse(success=True)

    def _status(self, resource: str, owner: str) -> lock_pb2.LockStatus.ValueType:
        lease = self._live(resource)
        if lease is None:
            return lock_pb2.LOCK_UNEXIST
        return lock_pb2.SUCCESS if lease[0] == owner else lock_pb2.LOCK_BELONG_TO_OTHERS

    async def Unlock(self, request, context):  # type: ignore[no-untyped-def]
        status = self._status(request.resource_id, request.lock_owner)
        if status == lock_pb2.SUCCESS:
            del self.leases[request.resource_id]
        return lock_pb2.UnlockResponse(status=status)

    async def KeepAlive(self, request, context):  # type: ignore[no-untyped-def]
        status = self._status(request.resource_id, request.lock_owner)
        if status == lock_pb2.SUCCESS:
            self.leases[request.resource_id] = (request.lock_owner,
                                                time.monotonic() + request.expire)
        return lock_pb2.KeepAliveResponse(status=status)


class Group:
    """A consumer group of a topic: its queue survives while nobody listens."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[pubsub_pb2.PullMessagesResponse] = asyncio.Queue()


class PubSubService(pubsub_pb2_grpc.PubSubServicer):
    """Topics with consumer groups (``consumerID`` in the topic metadata). Every group of a
    topic gets every message; the streams of one group share them. A message delivered on a
    stream waits for its ack; the stream ending first puts it back in the group's queue. An ack
    with ``ack_error`` means the sidecar gave up on it: it is dropped.

    Messages of a topic no group has subscribed to yet are kept (up to ``BACKLOG``) for the
    first group: the protocol has no answer to a subscription, so a publish made right after
    the sidecar's ``subscribe`` returned can reach this server before the PullMessages stream
    that creates the group. For the same reason a group created later still gets the messages
    published in the ``JOIN_WINDOW`` seconds before it: two groups subscribed in the same
    instant both see a publish that raced their streams."""

    BACKLOG = 10_000
    JOIN_WINDOW = 5.0

    def __init__(self) -> None:
        self.topics: dict[str, dict[str, Group]] = {}
        self.unclaimed: dict[str, collections.deque[pubsub_pb2.PullMessagesResponse]] = {}
        self.recent: dict[str, collections.deque[tuple[float, bytes, dict[str, str], str]]] = {}
        self.ids = 0

    def _message(self, topic: str, data: bytes, metadata: dict[str, str],
                 content_type: str) -> pubsub_pb2.PullMessagesResponse:
        self.ids += 1
        return pubsub_pb2.PullMessagesResponse(data=data, topic_name=topic, metadata=metadata,
                                               content_type=content_type, id=str(self.ids))

    async def Init(self, request, context):  # type: ignore[no-untyped-def]
        return pubsub_pb2.PubSubInitResponse()

    async def Features(self, request, context):  # type: ignore[no-untyped-def]
        return common_pb2.FeaturesResponse()

    async def Ping(self, request, context):  # type: ignore[no-untyped-def]
        return common_pb2.PingResponse()

    def _publish(self, topic: str, data: bytes, metadata: dict[str, str],
                 content_type: str = "") -> None:
        """Keep the message with the content type it was published with, reported on pull
        (PullMessagesResponse.content_type) as a broker that records one reports it."""
        self.recent.setdefault(topic, collections.deque(maxlen=self.BACKLOG)).append(
            (time.monotonic(), data, metadata, content_type))
        groups = self.topics.get(topic)
        if not groups:
            self.unclaimed.setdefault(topic, collections.deque(maxlen=self.BACKLOG)).append(
                self._message(topic, data, metadata, content_type))
            return
        for group in groups.values():
            group.queue.put_nowait(self._message(topic, data, metadata, content_type))

    def _group(self, topic: str, name: str) -> Group:
        groups = self.topics.setdefault(topic, {})
        group = groups.get(name)
        if group is None:
            group = groups[name] = Group()
            backlog = self.unclaimed.pop(topic, None)
            if backlog is not None:  # the first group takes the backlog
                for message in backlog:
                    group.queue.put_nowait(message)
            else:  # a later group: what was published just before it joined
                since = time.monotonic() - self.JOIN_WINDOW
                for at, data, metadata, content_type in self.recent.get(topic, ()):
                    if at >= since:
                        group.queue.put_nowait(self._message(topic, data, metadata,
                                                             content_type))
        return group

    async def Publish(self, request, context):  # type: ignore[no-untyped-def]
        self._publish(request.topic, request.data, dict(request.metadata),
                      request.content_type)
        return pubsub_pb2.PublishResponse()

    async def BulkPublish(self, request, context):  # type: ignore[no-untyped-def]
        for entry in request.entries:
            self._publish(request.topic, entry.event,
                          {**request.metadata, **entry.metadata}, entry.content_type)
        return pubsub_pb2.BulkPublishResponse()

    async def PullMessages(self, request_iterator, context):  # type: ignore[no-untyped-def]
        first = await request_iterator.__anext__()
        name = first.topic.name
        group_name = first.topic.metadata.get("consumerID", "default")
        group = self._group(name, group_name)
        in_flight: dict[str, pubsub_pb2.PullMessagesResponse] = {}
        ended = asyncio.Event()

        async def read_acks() -> None:
            async for ack in request_iterator:
                in_flight.pop(ack.ack_message_id, None)
            ended.set()

        acks = asyncio.create_task(read_acks())
        try:
            while not ended.is_set():
                getter = asyncio.create_task(group.queue.get())
                waiter = asyncio.create_task(ended.wait())
                done, _ = await asyncio.wait({getter, waiter},
                                             return_when=asyncio.FIRST_COMPLETED)
                waiter.cancel()
                if getter not in done:
                    getter.cancel()
                    break
                message = getter.result()
                in_flight[message.id] = message
                yield message
        finally:
            acks.cancel()
            for message in in_flight.values():  # never answered: deliver again
                group.queue.put_nowait(message)

    async def Pause(self, request, context):  # type: ignore[no-untyped-def]
        return pubsub_pb2.PauseResponse()

    async def Resume(self, request, context):  # type: ignore[no-untyped-def]
        return pubsub_pb2.ResumeResponse()


class EchoBinding(bindings_pb2_grpc.OutputBindingServicer):
    """An output binding with one operation, ``echo``: answers the data it was given."""

    async def Init(self, request, context):  # type: ignore[no-untyped-def]
        return bindings_pb2.OutputBindingInitResponse()

    async def Ping(self, request, context):  # type: ignore[no-untyped-def]
        return common_pb2.PingResponse()

    async def ListOperations(self, request, context):  # type: ignore[no-untyped-def]
        return bindings_pb2.ListOperationsResponse(operations=["echo"])

    async def Invoke(self, request, context):  # type: ignore[no-untyped-def]
        return bindings_pb2.InvokeResponse(data=request.data, metadata={"echoed": "true"})


class SequencerService(sequencer_pb2_grpc.SequencerServicer):
    def __init__(self) -> None:
        self.counters: dict[str, int] = {}

    async def Init(self, request, context):  # type: ignore[no-untyped-def]
        return sequencer_pb2.SequencerInitResponse()

    async def Features(self, request, context):  # type: ignore[no-untyped-def]
        return common_pb2.FeaturesResponse()

    async def Ping(self, request, context):  # type: ignore[no-untyped-def]
        return common_pb2.PingResponse()

    async def NextId(self, request, context):  # type: ignore[no-untyped-def]
        self.counters[request.key] = self.counters.get(request.key, 0) + 1
        return sequencer_pb2.NextIdResponse(next_id=self.counters[request.key])

    async def EnsureBiggerThan(self, request, context):  # type: ignore[no-untyped-def]
        self.counters[request.key] = max(self.counters.get(request.key, 0), request.floor)
        return sequencer_pb2.EnsureBiggerThanResponse()


async def serve(socket: str) -> None:
    """Serve until SIGINT/SIGTERM; the socket file must not exist yet."""
    server = grpc.aio.server()
    state = StateService(Store())
    state_pb2_grpc.add_StateStoreServicer_to_server(state, server)
    state_pb2_grpc.add_TransactionalStateStoreServicer_to_server(state, server)
    lock_pb2_grpc.add_LockStoreServicer_to_server(LockService(), server)
    sequencer_pb2_grpc.add_SequencerServicer_to_server(SequencerService(), server)
    pubsub_pb2_grpc.add_PubSubServicer_to_server(PubSubService(), server)
    bindings_pb2_grpc.add_OutputBindingServicer_to_server(EchoBinding(), server)
    names = [state_pb2.DESCRIPTOR.services_by_name["StateStore"].full_name,
             state_pb2.DESCRIPTOR.services_by_name["TransactionalStateStore"].full_name,
             lock_pb2.DESCRIPTOR.services_by_name["LockStore"].full_name,
             sequencer_pb2.DESCRIPTOR.services_by_name["Sequencer"].full_name,
             pubsub_pb2.DESCRIPTOR.services_by_name["PubSub"].full_name,
             bindings_pb2.DESCRIPTOR.services_by_name["OutputBinding"].full_name,
             reflection.SERVICE_NAME]
    reflection.enable_server_reflection(names, server)
    server.add_insecure_port(f"unix://{socket}")
    await server.start()
    print(f"serving {', '.join(names[:-1])} on {socket}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop(1)


def main() -> None:
    socket = Path(sys.argv[1] if len(sys.argv) > 1
                  else "/tmp/dapr-components-sockets/memstore.sock")
    socket.parent.mkdir(parents=True, exist_ok=True)
    socket.unlink(missing_ok=True)  # left behind by a crash
    try:
        asyncio.run(serve(str(socket)))
    finally:
        socket.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
