"""What every etcd-backed component shares: settings, the etcd v3 API over gRPC on every
member of the cluster, call timeouts, small builders for transactions, and the mapping of
errors to pylotto errors.

Metadata (Dapr's and Layotto's names): ``endpoints`` (``host:port`` of each member, separated
by ``,`` or Layotto's ``;``, each optionally ``http://`` or ``https://``), ``dialTimeout`` (how
long connecting to one member may take before the next is tried; a duration or Layotto's
whole seconds, default 5s), ``username`` / ``password`` (etcd authentication), ``tlsCa``,
``tlsCert``, ``tlsCertKey`` (Layotto's: files of the CA that signed the members' certificates,
and of a client certificate and its key; any of them, or an ``https://`` endpoint, turns TLS
on; without ``tlsCa`` the system's CAs are trusted), ``keyPrefixPath`` (a root every key of the
component goes under, default ``pylotto``), ``timeout`` (a duration, default 10s: the limit of
every call, failing over included).

The etcd v3 API is spoken through pylotto's own protos (``pylotto/proto/etcd``), over the
members of :mod:`.etcd_members`: a call goes to the active member; when that member is down or
fails the call, reads and other calls that can safely run twice (``Range``, a read-only
``Txn``, ``LeaseGrant``, ``LeaseRevoke``, ``LeaseTimeToLive``) are sent again to the next
live member within the same timeout; a write whose outcome is unknown (it reached a member that
then failed) is UNAVAILABLE — it may or may not have been applied, as with etcd's own Go
client — and the next call goes to the next member. A write that never left (no member
connected) is sent to the next one. Watches are made with etcd's ``hasleader`` requirement,
so a member cut off from its leader ends them instead of going quiet; they are then resumed
on another member (:meth:`EtcdClient.watch`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import TypeVar

import grpc
from pydantic import Field, field_validator, model_validator

from pylotto.components._backends.etcd_members import Member, Members
from pylotto.components.errors import DriverErrors, Rule
from pylotto.core.errors import Internal, Unavailable
from pylotto.core.metadata import ComponentSettings, Duration
from pylotto.proto.etcd import rpc_pb2

DEFAULT_TIMEOUT = 10.0
DEFAULT_DIAL_TIMEOUT = 5.0
"""Layotto's ``dialTimeout`` default (components/pkg/utils/etcd.go)."""

R = TypeVar("R")


def parse_endpoints(text: str) -> tuple[list[str], bool]:
    """(``host:port`` targets, whether any is ``https://``) of an ``endpoints`` value;
    ValueError when one is not ``host:port``."""
    targets, secure = [], False
    for part in text.replace(";", ",").split(","):
        endpoint = part.strip()
        if not endpoint:
            continue
        if endpoint.startswith("https://"):
            secure = True
        for scheme in ("http://", "https://"):
            endpoint = endpoint.removeprefix(scheme)
        endpoint = endpoint.rstrip("/")
        host, sep, port = endpoint.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ValueError(f"endpoint {part.strip()!r}: expected host:port")
        targets.append(endpoint)
    if not targets:
        raise ValueError("no endpoint: expected host:port[,host:port...]")
    return targets, secure


class EtcdSettings(ComponentSettings):
    """Connection keys shared by every etcd component (mixed into each one's settings)."""

    endpoints: str = Field(min_length=1)
    dial_timeout: Duration = Field(DEFAULT_DIAL_TIMEOUT, alias="dialTimeout", gt=0)
    username: str = ""
    password: str = ""
    tls_ca: str = Field("", alias="tlsCa")
    tls_cert: str = Field("", alias="tlsCert")
    tls_cert_key: str = Field("", alias="tlsCertKey")
    key_prefix_path: str = Field("pylotto", alias="keyPrefixPath")
    timeout: Duration = Field(DEFAULT_TIMEOUT, alias="timeout", gt=0)

    @field_validator("endpoints")
    @classmethod
    def _host_ports(cls, value: str) -> str:
        parse_endpoints(value)
        return value

    @field_validator("tls_ca", "tls_cert", "tls_cert_key")
    @classmethod
    def _readable(cls, value: str) -> str:
        if value and not Path(value).is_file():
            raise ValueError(f"{value!r} is not a readable file")
        return value

    @model_validator(mode="after")
    def _pair(self) -> EtcdSettings:
        if bool(self.tls_cert) != bool(self.tls_cert_key):
            raise ValueError("tlsCert and tlsCertKey go together (a client certificate and "
                             "its key)")
        return self

    @property
    def targets(self) -> list[str]:
        return parse_endpoints(self.endpoints)[0]

    @property
    def tls(self) -> bool:
        return parse_endpoints(self.endpoints)[1] or bool(self.tls_ca or self.tls_cert)

    def credentials(self) -> grpc.ChannelCredentials | None:
        """TLS credentials from the files named (None: plain TCP)."""
        if not self.tls:
            return None

        def read(path: str) -> bytes | None:
            return Path(path).read_bytes() if path else None

        return grpc.ssl_channel_credentials(root_certificates=read(self.tls_ca),
                                            private_key=read(self.tls_cert_key),
                                            certificate_chain=read(self.tls_cert))

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


def unreachable(exc: grpc.aio.AioRpcError) -> bool:
    """The member could not serve the call (down, cut off from its leader, too slow): the
    error is Unavailable, and the next call goes to another member."""
    return exc.code() in UNREACHABLE or (exc.code() is grpc.StatusCode.UNKNOWN
                                         and "context deadline exceeded" in (exc.details() or ""))


def lost(member: Member, exc: grpc.aio.AioRpcError) -> bool:
    """The call failed because the member's connection is gone (the member may be down), not
    because it was slow or has no leader."""
    return exc.code() is grpc.StatusCode.UNAVAILABLE and member.channel.get_state() is not \
        grpc.ChannelConnectivity.READY


def never_sent(exc: grpc.aio.AioRpcError) -> bool:
    """gRPC failed the call before sending it (the member's connection was down)."""
    return exc.code() is grpc.StatusCode.UNAVAILABLE and (exc.details() or "").startswith(
        "failed to connect")


def token_expired(exc: grpc.aio.AioRpcError) -> bool:
    """etcd no longer takes the member's auth token (it expired, or the member restarted)."""
    return exc.code() is grpc.StatusCode.UNAUTHENTICATED and "invalid auth token" in (
        exc.details() or "")


ERRORS = DriverErrors(
    "etcd",
    connection_errors=("builtins:OSError",),
    rules=(
        Rule(_RPC_ERROR, Unavailable, "{backend} unreachable: {reason}",
             when=lambda exc: unreachable(_rpc(exc)), reason=lambda exc: _rpc(exc).details()),
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


Send = Callable[[Member, float], Awaitable[R]]
"""A call to one member, given the seconds it may take."""


class EtcdClient:
    """The etcd v3 API on the cluster's members; every call has the component's timeout and
    raises pylotto errors."""

    def __init__(self, settings: EtcdSettings, what: str) -> None:
        self.settings = settings
        self.what = what
        self.timeout = settings.timeout
        self.root = settings.root
        self.members: Members | None = None

    async def open(self) -> None:
        try:
            credentials = self.settings.credentials()
        except OSError as exc:
            raise Internal(f"{self.what}: reading the TLS files: {exc}") from exc
        self.members = Members(self.settings.targets, credentials, self.settings.dial_timeout)
        try:
            await self.ping()
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        members, self.members = self.members, None
        if members is not None:
            await members.close()

    def key(self, name: str) -> bytes:
        return self.root + name.encode()

    def _members(self) -> Members:
        if self.members is None:
            raise Unavailable(f"{self.what} is not open")
        return self.members

    async def _member(self, skip: set[Member], deadline: float) -> Member | None:
        """The next connected member (added to ``skip`` when it is not), authenticated
        first when the component has a ``username``, its id known, and following a live
        leader (:meth:`Members.settled`)."""
        members = self._members()
        loop = asyncio.get_running_loop()
        while (member := await members.connected(skip, deadline)) is not None:
            try:
                if self.settings.username and member.token is None:
                    reply = await member.auth.Authenticate(rpc_pb2.AuthenticateRequest(
                        name=self.settings.username, password=self.settings.password),
                        timeout=max(deadline - loop.time(), 0.001))
                    member.token = reply.token
                if not member.member_id:
                    await member.status(max(deadline - loop.time(), 0.001))
            except grpc.aio.AioRpcError as exc:
                if not unreachable(exc):
                    raise map_error(exc, self.what) from exc
                members.failed(member, lost(member, exc))
                skip.add(member)
                continue
            await members.settled(member, deadline)
            return member
        return None

    def _nobody(self, error: BaseException | None) -> Exception:
        if error is not None:
            return map_error(error, self.what)
        return Unavailable(f"{self.what}: etcd unreachable: no member of "
                           f"{', '.join(self.settings.targets)} connected in time")

    async def call(self, send: Send[R], *, retry: bool) -> R:
        """``send`` to the active member within the timeout; on another member when that
        one fails and ``retry`` (the call may safely run twice) or it was never sent.
        Errors become pylotto errors."""
        members = self._members()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        tried: set[Member] = set()
        error: grpc.aio.AioRpcError | None = None
        reauthenticated = False
        while True:
            member = await self._member(tried, deadline)
            if member is None:
                raise self._nobody(error) from error
            try:
                return await send(member, max(deadline - loop.time(), 0.001))
            except grpc.aio.AioRpcError as exc:
                if token_expired(exc) and not reauthenticated:
                    member.token, reauthenticated = None, True
                    continue
                if not unreachable(exc):
                    raise map_error(exc, self.what) from exc
                members.failed(member, lost(member, exc))
                if not (retry or never_sent(exc)):
                    raise map_error(exc, self.what) from exc
                tried.add(member)
                error = exc

    async def ping(self) -> None:
        await self.range(self.root + b"\0ping")

    # ---- builders ---------------------------------------------------------------------------

    def compare(self, key: bytes, target: str, value: int | bytes,
                result: str = "EQUAL") -> rpc_pb2.Compare:
        fields = {"MOD": "mod_revision", "CREATE": "create_revision", "VALUE": "value",
                  "VERSION": "version"}
        return rpc_pb2.Compare(key=key, target=rpc_pb2.Compare.CompareTarget.Value(target),
                               result=rpc_pb2.Compare.CompareResult.Value(result),
                               **{fields[target]: value})  # type: ignore[arg-type]

    def put(self, key: bytes, value: bytes, lease: int = 0) -> rpc_pb2.RequestOp:
        return rpc_pb2.RequestOp(request_put=rpc_pb2.PutRequest(key=key, value=value,
                                                                lease=lease))

    def delete(self, key: bytes, range_end: bytes = b"") -> rpc_pb2.RequestOp:
        return rpc_pb2.RequestOp(request_delete_range=rpc_pb2.DeleteRangeRequest(
            key=key, range_end=range_end))

    def get(self, key: bytes) -> rpc_pb2.RequestOp:
        return rpc_pb2.RequestOp(request_range=rpc_pb2.RangeRequest(key=key))

    # ---- calls ------------------------------------------------------------------------------

    async def txn(self, compare: Sequence[rpc_pb2.Compare], success: Sequence[rpc_pb2.RequestOp],
                  failure: Sequence[rpc_pb2.RequestOp] = ()) -> rpc_pb2.TxnResponse:
        request = rpc_pb2.TxnRequest(compare=list(compare), success=list(success),
                                     failure=list(failure))
        reads_only = all(op.HasField("request_range") for op in (*success, *failure))
        return await self.call(lambda m, t: m.kv.Txn(request, timeout=t, metadata=m.metadata),
                               retry=reads_only)

    async def range(self, key: bytes, range_end: bytes = b"") -> rpc_pb2.RangeResponse:
        request = rpc_pb2.RangeRequest(key=key, range_end=range_end)
        return await self.call(lambda m, t: m.kv.Range(request, timeout=t, metadata=m.metadata),
                               retry=True)

    async def grant(self, ttl: int) -> int:
        """A new lease of ``ttl`` seconds (sent again after a failure: a lease granted twice
        leaves one unused, which expires by itself)."""
        request = rpc_pb2.LeaseGrantRequest(TTL=ttl)
        reply = await self.call(
            lambda m, t: m.lease.LeaseGrant(request, timeout=t, metadata=m.metadata), retry=True)
        return int(reply.ID)

    async def revoke(self, lease: int) -> None:
        """Revoke ``lease``; one that already expired (or was revoked) is no error."""
        request = rpc_pb2.LeaseRevokeRequest(ID=lease)
        try:
            await self.call(lambda m, t: m.lease.LeaseRevoke(request, timeout=t,
                                                             metadata=m.metadata), retry=True)
        except Internal as exc:
            if "not found" not in exc.message:
                raise

    async def time_to_live(self, lease: int) -> int:
        """Seconds ``lease`` has left (-1: expired or unknown)."""
        request = rpc_pb2.LeaseTimeToLiveRequest(ID=lease)
        reply = await self.call(lambda m, t: m.lease.LeaseTimeToLive(
            request, timeout=t, metadata=m.metadata), retry=True)
        return int(reply.TTL)

    async def watch(self, create: rpc_pb2.WatchCreateRequest
                    ) -> AsyncIterator[rpc_pb2.WatchResponse]:
        """The responses of one watch on the active member until its stream fails (raised as
        a pylotto error) or ends; either way the next watch (and call) goes to another
        member. The caller resumes from the last revision it saw."""
        members = self._members()
        loop = asyncio.get_running_loop()
        member = await self._member(set(), loop.time() + self.timeout)
        if member is None:
            raise self._nobody(None)

        call = member.watch.Watch(metadata=(*(member.metadata or ()), ("hasleader", "true")))
        try:
            await call.write(rpc_pb2.WatchRequest(create_request=create))
            async for response in call:
                yield response
            members.failed(member, lost=False)
        except grpc.aio.AioRpcError as exc:
            if unreachable(exc):
                members.failed(member, lost(member, exc))
            raise map_error(exc, self.what) from exc
        finally:
            call.cancel()
