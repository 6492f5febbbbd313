"""What every etcd-backed component shares: settings, one gRPC channel to etcd v3, call
timeouts, small builders for transactions, and the mapping of errors to pylotto errors.

Metadata (Dapr's and Layotto's names): ``endpoints`` (``host:port``; the first of a
comma-separated list is used), ``username`` / ``password`` (etcd authentication),
``keyPrefixPath`` (a root every key of the component goes under, default ``pylotto``),
``timeout`` (a duration, default 10s: the limit of every call).

The etcd v3 API is spoken through the generated stubs of ``aetcd`` (imported when the
component starts). gRPC reconnects by itself after an outage (quickly: back-off capped at 2s);
calls made meanwhile fail with Unavailable.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import grpc
from pydantic import Field, field_validator

from pylotto.components.errors import DriverErrors, Rule
from pylotto.core.errors import Internal, Unavailable
from pylotto.core.metadata import ComponentSettings, Duration

DEFAULT_TIMEOUT = 10.0
CHANNEL_OPTIONS = [
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.min_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 2000),
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
]


class EtcdSettings(ComponentSettings):
    """Connection keys shared by every etcd component (mixed into each one's settings)."""

    endpoints: str = Field(min_length=1)
    username: str = ""
    password: str = ""
    key_prefix_path: str = Field("pylotto", alias="keyPrefixPath")
    timeout: Duration = Field(DEFAULT_TIMEOUT, alias="timeout", gt=0)

    @field_validator("endpoints")
    @classmethod
    def _host_port(cls, value: str) -> str:
        first = value.split(",")[0].strip()
        for scheme in ("http://", "https://"):
            first = first.removeprefix(scheme)
        host, sep, port = first.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ValueError(f"endpoints {value!r}: expected host:port")
        return first

    @property
    def root(self) -> bytes:
        """Where the component's keys live: ``keyPrefixPath/`` (or nothing when empty)."""
        prefix = self.key_prefix_path.strip("/")
        return f"{prefix}/".encode() if prefix else b""


UNREACHABLE = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED,
                         grpc.StatusCode.CANCELLED})
"""gRPC statuses meaning etcd could not be reached (or not in time). etcd itself answers
UNAVAILABLE for every state of a leader election ("etcdserver: no leader", "leader changed",
"request timed out", "server stopped", "unhealthy cluster"); its one other transient answer,
"etcdserver: too many requests", is RESOURCE_EXHAUSTED (the rule below). A member that lost its
quorum can also pass on Go's "context deadline exceeded" as UNKNOWN: that is a timeout too."""
_RPC_ERROR = ("grpc.aio:AioRpcError",)


def _rpc(exc: BaseException) -> grpc.aio.AioRpcError:
    """``exc`` as the gRPC error a :class:`Rule` on ``_RPC_ERROR`` only ever sees."""
    assert isinstance(exc, grpc.aio.AioRpcError)
    return exc


ERRORS = DriverErrors(
    "etcd",
    connection_errors=("builtins:OSError",),
    rules=(
        Rule(_RPC_ERROR, Unavailable, "{backend} unreachable: {reason}",
             when=lambda exc: _rpc(exc).code() in UNREACHABLE or (
                 _rpc(exc).code() is grpc.StatusCode.UNKNOWN
                 and "context deadline exceeded" in (_rpc(exc).details() or "")),
             reason=lambda exc: _rpc(exc).details()),
        Rule(_RPC_ERROR, Unavailable, "{backend} is overloaded: {reason}",
             when=lambda exc: _rpc(exc).code() is grpc.StatusCode.RESOURCE_EXHAUSTED
             and "too many requests" in (_rpc(exc).details() or ""),
             reason=lambda exc: _rpc(exc).details()),
        Rule(_RPC_ERROR, Internal, "{backend} answered {reason}",
             reason=lambda exc: f"{_rpc(exc).code().name}: {_rpc(exc).details()}"),
    ),
)
"""gRPC errors by status; timeouts and socket errors are Unavailable, the rest Internal."""
map_error = ERRORS.map


def prefix_end(prefix: bytes) -> bytes:
    """The range end covering every key starting with ``prefix``."""
    end = bytearray(prefix)
    while end:
        if end[-1] < 0xFF:
            end[-1] += 1
            return bytes(end)
        end.pop()
    return b"\0"


class EtcdClient:
    """The KV, Lease and Watch stubs on one channel; ``call`` adds timeout and error mapping."""

    def __init__(self, settings: EtcdSettings, what: str) -> None:
        self.settings = settings
        self.what = what
        self.timeout = settings.timeout
        self.root = settings.root
        self.channel: Any = None
        self.kv: Any = None
        self.lease: Any = None
        self.watch: Any = None
        self.metadata: tuple[tuple[str, str], ...] | None = None
        self.rpc: Any = None

    async def open(self) -> None:
        from aetcd import rpc

        self.rpc = rpc
        self.channel = grpc.aio.insecure_channel(self.settings.endpoints,
                                                 options=CHANNEL_OPTIONS)
        self.kv = rpc.KVStub(self.channel)
        self.lease = rpc.LeaseStub(self.channel)
        self.watch = rpc.WatchStub(self.channel)
        if self.settings.username:
            auth = rpc.AuthStub(self.channel)
            reply = await self.call(auth.Authenticate, rpc.AuthenticateRequest(
                name=self.settings.username, password=self.settings.password))
            self.metadata = (("token", reply.token),)
        await self.ping()

    async def close(self) -> None:
        channel, self.channel = self.channel, None
        if channel is not None:
            await channel.close()

    def key(self, name: str) -> bytes:
        return self.root + name.encode()

    async def call(self, method: Any, request: Any) -> Any:
        """A unary call with the component's timeout; errors become pylotto errors."""
        if self.channel is None:
            raise Unavailable(f"{self.what} is not open")
        try:
            return await method(request, timeout=self.timeout, metadata=self.metadata)
        except Exception as exc:
            raise map_error(exc, self.what) from exc

    async def ping(self) -> None:
        await self.call(self.kv.Range, self.rpc.RangeRequest(key=self.root + b"\0ping"))

    # ---- builders ---------------------------------------------------------------------------

    def compare(self, key: bytes, target: str, value: Any, result: str = "EQUAL") -> Any:
        rpc = self.rpc
        fields = {"MOD": "mod_revision", "CREATE": "create_revision", "VALUE": "value",
                  "VERSION": "version"}
        return rpc.Compare(key=key, target=getattr(rpc.Compare, target),
                           result=getattr(rpc.Compare, result), **{fields[target]: value})

    def put(self, key: bytes, value: bytes, lease: int = 0) -> Any:
        return self.rpc.RequestOp(request_put=self.rpc.PutRequest(key=key, value=value,
                                                                  lease=lease))

    def delete(self, key: bytes) -> Any:
        return self.rpc.RequestOp(request_delete_range=self.rpc.DeleteRangeRequest(key=key))

    def get(self, key: bytes) -> Any:
        return self.rpc.RequestOp(request_range=self.rpc.RangeRequest(key=key))

    async def txn(self, compare: Sequence[Any], success: Sequence[Any],
                  failure: Sequence[Any] = ()) -> Any:
        return await self.call(self.kv.Txn, self.rpc.TxnRequest(
            compare=list(compare), success=list(success), failure=list(failure)))

    async def range(self, key: bytes, range_end: bytes = b"") -> Any:
        return await self.call(self.kv.Range, self.rpc.RangeRequest(key=key,
                                                                    range_end=range_end))

    async def grant(self, ttl: int) -> int:
        reply = await self.call(self.lease.LeaseGrant, self.rpc.LeaseGrantRequest(TTL=ttl))
        return int(reply.ID)

    async def revoke(self, lease: int) -> None:
        """Revoke ``lease``; one that already expired is no error."""
        try:
            await self.call(self.lease.LeaseRevoke, self.rpc.LeaseRevokeRequest(ID=lease))
        except Internal as exc:
            if "not found" not in exc.message:
                raise

    async def time_to_live(self, lease: int) -> int:
        """Seconds ``lease`` has left (-1: expired or unknown)."""
        reply = await self.call(self.lease.LeaseTimeToLive,
                                self.rpc.LeaseTimeToLiveRequest(ID=lease))
        return int(reply.TTL)
