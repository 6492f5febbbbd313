"""The members of an etcd cluster as one client sees them: a gRPC channel per endpoint, the
member calls go to, and the switch to another when it fails.

Every call goes to the *active* member (the first endpoint at start). Before a call is sent
its channel must be connected: a member whose connection is down (refused, reset, not
connected within ``dialTimeout``) is passed over for the next endpoint in the list, which
becomes the active one. A member that fails a call — its connection lost, or etcd answering
that it has no leader, is stopped or timed out — is left too: the next call goes to the next
member. All members of a cluster serve the same data (reads are linearizable), so which one
answers does not change a result.

With ``username`` each member is asked for a token the first time a call goes to it, and
again when etcd says the token is no longer valid (simple tokens expire after
``--auth-token-ttl`` idle seconds, and a restarted member has forgotten those it knew).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import grpc

from pylotto.proto.etcd import rpc_pb2, rpc_pb2_grpc

CHANNEL_OPTIONS = [
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.min_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 2000),
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    # a member gone silent (a host down, a partition) is noticed within 15 s even with no call
    # in flight; etcd's servers allow pings every 5 s (--grpc-keepalive-min-time)
    ("grpc.keepalive_time_ms", 10_000),
    ("grpc.keepalive_timeout_ms", 5_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
]

Metadata = tuple[tuple[str, str], ...]


@dataclass(eq=False)
class Member:
    """One endpoint: its channel and the etcd services' stubs on it."""

    endpoint: str
    channel: grpc.aio.Channel
    kv: rpc_pb2_grpc.KVStub = field(init=False)
    lease: rpc_pb2_grpc.LeaseStub = field(init=False)
    watch: rpc_pb2_grpc.WatchStub = field(init=False)
    auth: rpc_pb2_grpc.AuthStub = field(init=False)
    maintenance: rpc_pb2_grpc.MaintenanceStub = field(init=False)
    token: str | None = None
    """The auth token this member issued (None: none yet, or no authentication)."""
    member_id: int = 0
    """etcd's id of the member (0: not asked yet)."""

    def __post_init__(self) -> None:
        self.kv = rpc_pb2_grpc.KVStub(self.channel)
        self.lease = rpc_pb2_grpc.LeaseStub(self.channel)
        self.watch = rpc_pb2_grpc.WatchStub(self.channel)
        self.auth = rpc_pb2_grpc.AuthStub(self.channel)
        self.maintenance = rpc_pb2_grpc.MaintenanceStub(self.channel)

    @property
    def metadata(self) -> Metadata | None:
        return (("token", self.token),) if self.token else None

    async def status(self, limit: float) -> rpc_pb2.StatusResponse:
        """The member's status (its id, and the leader it follows); gRPC errors raised."""
        reply: rpc_pb2.StatusResponse = await self.maintenance.Status(
            rpc_pb2.StatusRequest(), timeout=limit, metadata=self.metadata)
        self.member_id = reply.header.member_id
        return reply

    async def connect(self, limit: float) -> bool:
        """Whether the channel is (or gets, within ``limit`` seconds) connected; False at once
        when its last attempt failed (gRPC tries again in the background, with back-off)."""
        state = self.channel.get_state(try_to_connect=True)
        try:
            async with asyncio.timeout(limit):
                while state is not grpc.ChannelConnectivity.READY:
                    if state is grpc.ChannelConnectivity.TRANSIENT_FAILURE:
                        return False
                    await self.channel.wait_for_state_change(state)
                    state = self.channel.get_state(try_to_connect=True)
        except TimeoutError:
            return False
        return True


class Members:
    """The members of the endpoint list, in order; ``active`` is where calls go."""

    def __init__(self, endpoints: list[str], credentials: grpc.ChannelCredentials | None,
                 dial_timeout: float) -> None:
        self.dial_timeout = dial_timeout
        self.members = [Member(endpoint, grpc.aio.secure_channel(
            endpoint, credentials, options=CHANNEL_OPTIONS) if credentials is not None
            else grpc.aio.insecure_channel(endpoint, options=CHANNEL_OPTIONS))
            for endpoint in endpoints]
        self.active = 0
        self.switches = 0
        """How often calls moved to another member (for the log and the tests)."""
        self.left_behind: Member | None = None
        """The member calls last moved away from after losing its connection (None: none, or
        the cluster has had another leader since, or it is back)."""
        self._settling: asyncio.Task[None] | None = None

    @property
    def current(self) -> Member:
        return self.members[self.active]

    def in_turn(self, skip: set[Member]) -> list[Member]:
        """The members not in ``skip``, the active one first, then the next ones in the
        list's order (wrapping round)."""
        count = len(self.members)
        turn = [self.members[(self.active + i) % count] for i in range(count)]
        return [member for member in turn if member not in skip]

    async def connected(self, skip: set[Member], deadline: float) -> Member | None:
        """The first member in turn that is connected, made the active one; None when none is
        before ``deadline`` (a loop time)."""
        loop = asyncio.get_running_loop()
        for member in self.in_turn(skip):
            left = deadline - loop.time()
            if left <= 0:
                return None
            if not await member.connect(min(self.dial_timeout, left)):
                continue
            self.make_active(member)
            return member
        return None

    def make_active(self, member: Member) -> None:
        index = self.members.index(member)
        if index != self.active:
            self.active = index
            self.switches += 1

    def failed(self, member: Member, lost: bool) -> None:
        """``member`` failed a call (``lost``: its connection is gone, not just slow or
        without a leader): the next call goes to the next member (unless another call moved
        on already)."""
        if self.current is member and len(self.members) > 1:
            self.active = (self.active + 1) % len(self.members)
            self.switches += 1
            if lost:
                self.left_behind = member

    async def settled(self, member: Member, deadline: float) -> None:
        """Wait (until ``deadline`` at most) for ``member`` to follow a leader other than the
        member calls left behind when its connection was lost. That one may have been the
        leader: until the others notice it is gone (an election timeout), they pass what they
        are sent on to it, and a write or linearizable read sent meanwhile is lost and waits
        out its whole timeout; held back until the new leader is elected, it is served at
        once. The wait ends too when the member left behind is connected again. One poll of
        the member's status (every 50 ms) serves every waiting call."""
        gone = self.left_behind
        if gone is None or member is gone or not gone.member_id:
            return
        if self._settling is None or self._settling.done():
            self._settling = asyncio.create_task(self._new_leader(member, gone))
        left = deadline - asyncio.get_running_loop().time()
        try:
            async with asyncio.timeout(left):
                await asyncio.shield(self._settling)
        except TimeoutError:
            return  # the call goes ahead, and fails by itself if the member can't serve it

    async def _new_leader(self, member: Member, gone: Member) -> None:
        loop = asyncio.get_running_loop()
        give_up = loop.time() + 30
        while loop.time() < give_up:
            if gone.channel.get_state(try_to_connect=True) is grpc.ChannelConnectivity.READY:
                break  # it is back (or was never gone): whatever it leads, it serves
            try:
                status = await member.status(1.0)
                if status.leader not in (0, gone.member_id):
                    break
            except grpc.aio.AioRpcError:
                pass  # a member too busy to answer has no new leader to show yet either
            await asyncio.sleep(0.05)
        if self.left_behind is gone:
            self.left_behind = None

    async def close(self) -> None:
        if self._settling is not None:
            self._settling.cancel()
        for member in self.members:
            await member.channel.close()
