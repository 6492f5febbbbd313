"""pylotto's Python SDK for the Layotto runtime API.

``Client`` (blocking) and ``AsyncClient`` (asyncio) have one method per RPC (plus
``query_state``, on pylotto's own ``pylotto.v1.StateQuery`` service); ``App`` is the
callback server that receives pub/sub events. Refusals raise :class:`ClientError`.
"""

from pylotto.client.aio import AsyncClient
from pylotto.client.app import App
from pylotto.client.locking import Lock
from pylotto.client.retry import RetryPolicy
from pylotto.client.subscription import Subscription
from pylotto.client.sync import Client, SyncLock, SyncSubscription
from pylotto.client.types import (
    BindingResult,
    BulkStateItem,
    ClientError,
    Concurrency,
    ConfigurationItem,
    Consistency,
    EtagConflict,
    EventStatus,
    FileInfo,
    FileList,
    FileMeta,
    InvokeResult,
    LockNotAcquired,
    LockStatus,
    QueryResult,
    StateItem,
    TopicEvent,
    TransactionOperation,
)

__version__ = "0.1.0"
"""The version of the pylotto-client package (clients/python/pyproject.toml reads it)."""

__all__ = [
    "App", "AsyncClient", "BindingResult", "BulkStateItem", "Client", "ClientError",
    "Concurrency", "ConfigurationItem", "Consistency", "EtagConflict", "EventStatus",
    "FileInfo", "FileList", "FileMeta", "InvokeResult", "Lock", "LockNotAcquired",
    "LockStatus", "QueryResult", "RetryPolicy", "StateItem", "Subscription", "SyncLock",
    "SyncSubscription", "TopicEvent", "TransactionOperation",
]
