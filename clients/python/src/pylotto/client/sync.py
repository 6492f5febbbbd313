"""``Client``: the synchronous twin of :class:`AsyncClient`, same methods and signatures.

Each method runs the async one on a private event loop in a background thread, so the two
clients can never drift apart.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from types import TracebackType
from typing import Any, Concatenate, ParamSpec, TypeVar

from pylotto.client.aio import AsyncClient
from pylotto.client.locking import Lock
from pylotto.client.retry import RetryPolicy
from pylotto.client.subscription import Subscription
from pylotto.client.types import EventStatus, TopicEvent

P = ParamSpec("P")
T = TypeVar("T")


def _blocking(method: Callable[Concatenate[AsyncClient, P], Awaitable[T]]
              ) -> Callable[Concatenate[Client, P], T]:
    def call(self: Client, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return self._run(method(self._aio, *args, **kwargs))  # type: ignore[arg-type]

    call.__name__ = method.__name__
    call.__doc__ = method.__doc__
    return call


def _iterating(method: Callable[Concatenate[AsyncClient, P], AsyncIterator[T]]
               ) -> Callable[Concatenate[Client, P], Iterator[T]]:
    def call(self: Client, /, *args: P.args, **kwargs: P.kwargs) -> Iterator[T]:
        return self._iterate(method(self._aio, *args, **kwargs))

    call.__name__ = method.__name__
    call.__doc__ = method.__doc__
    return call


class Client:
    """``with Client() as client: client.save_state("in-memory", "k", b"v")``."""

    def __init__(self, address: str | None = None, *, timeout: float | None = 30.0,
                 api_token: str | None = None, tls: bool | None = None,
                 root_certificates: bytes | None = None,
                 retry: RetryPolicy | None = None) -> None:
        """See :class:`AsyncClient` for every argument."""
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True,
                                        name="pylotto-client")
        self._thread.start()

        async def make() -> AsyncClient:
            return AsyncClient(address, timeout=timeout, api_token=api_token, tls=tls,
                               root_certificates=root_certificates, retry=retry)

        self._aio = self._run(make())
        self.address = self._aio.address
        self.tls = self._aio.tls

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def _iterate(self, agen: AsyncIterator[T]) -> Iterator[T]:
        try:
            while True:
                try:
                    yield self._run(agen.__anext__())  # type: ignore[arg-type]
                except StopAsyncIteration:
                    return
        finally:
            aclose = getattr(agen, "aclose", None)
            if aclose is not None and self._loop.is_running():
                self._run(aclose())

    def close(self) -> None:
        if self._loop.is_running():
            self._run(self._aio.close())
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
            self._loop.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def subscribe(self, pubsub_name: str, topic: str, **options: Any) -> SyncSubscription:
        """See :meth:`AsyncClient.subscribe`; use ``with`` and ``for``."""
        return SyncSubscription(self, self._aio.subscribe(pubsub_name, topic, **options))

    def lock(self, store_name: str, resource_id: str, owner: str | None = None, *,
             expire: int, wait: float = 0.0, keep_alive: bool = False) -> SyncLock:
        """See :meth:`AsyncClient.lock`; use ``with``."""
        return SyncLock(self, self._aio.lock(store_name, resource_id, owner, expire=expire,
                                             wait=wait, keep_alive=keep_alive))

    wait_ready = _blocking(AsyncClient.wait_ready)
    update_state = _blocking(AsyncClient.update_state)
    say_hello = _blocking(AsyncClient.say_hello)
    invoke_service = _blocking(AsyncClient.invoke_service)
    get_state = _blocking(AsyncClient.get_state)
    get_bulk_state = _blocking(AsyncClient.get_bulk_state)
    query_state = _blocking(AsyncClient.query_state)
    save_state = _blocking(AsyncClient.save_state)
    save_bulk_state = _blocking(AsyncClient.save_bulk_state)
    delete_state = _blocking(AsyncClient.delete_state)
    delete_bulk_state = _blocking(AsyncClient.delete_bulk_state)
    execute_state_transaction = _blocking(AsyncClient.execute_state_transaction)
    publish_event = _blocking(AsyncClient.publish_event)
    try_lock = _blocking(AsyncClient.try_lock)
    unlock = _blocking(AsyncClient.unlock)
    lock_keep_alive = _blocking(AsyncClient.lock_keep_alive)
    get_next_id = _blocking(AsyncClient.get_next_id)
    get_configuration = _blocking(AsyncClient.get_configuration)
    save_configuration = _blocking(AsyncClient.save_configuration)
    delete_configuration = _blocking(AsyncClient.delete_configuration)
    subscribe_configuration = _iterating(AsyncClient.subscribe_configuration)
    iter_file = _iterating(AsyncClient.iter_file)
    get_file = _blocking(AsyncClient.get_file)
    put_file = _blocking(AsyncClient.put_file)
    list_file = _blocking(AsyncClient.list_file)
    del_file = _blocking(AsyncClient.del_file)
    get_file_meta = _blocking(AsyncClient.get_file_meta)
    invoke_binding = _blocking(AsyncClient.invoke_binding)
    get_secret = _blocking(AsyncClient.get_secret)
    get_bulk_secret = _blocking(AsyncClient.get_bulk_secret)


class SyncLock:
    """``with client.lock(store, resource, expire=10): ...``."""

    def __init__(self, client: Client, lock: Lock) -> None:
        self._client = client
        self._lock = lock
        self.owner = lock.owner

    def __enter__(self) -> SyncLock:
        self._client._run(self._lock.acquire())
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._client._run(self._lock.release())


class SyncSubscription:
    """``with client.subscribe(...) as sub: for event in sub: sub.ack(event)``."""

    def __init__(self, client: Client, subscription: Subscription) -> None:
        self._client = client
        self._sub = subscription

    def __enter__(self) -> SyncSubscription:
        self._client._run(self._sub.open())
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._client._run(self._sub.close())

    def __iter__(self) -> Iterator[TopicEvent]:
        return self._client._iterate(self._sub)

    def ack(self, event: TopicEvent | str, status: EventStatus = EventStatus.SUCCESS) -> None:
        self._client._run(self._sub.ack(event, status))
