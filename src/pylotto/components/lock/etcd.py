"""``etcd``: leases on etcd, shared by every sidecar using the same cluster.

Metadata: ``endpoints``, ``username``, ``password``, ``keyPrefixPath`` (default ``pylotto``),
``timeout`` (see :mod:`pylotto.components._backends.etcd_client`), plus ``keyPrefix``.

A lock is the key ``<keyPrefixPath>/<resource>`` holding the owner, attached to an etcd lease
of the lock's expiry: etcd deletes it when the lease runs out. ``try_lock`` is one transaction
``create_revision == 0 → put`` (exactly one contender succeeds); ``unlock`` compares the owner
and deletes in one transaction, then revokes the lease; ``keep_alive`` attaches a new lease of
the requested length in a transaction comparing the owner, then revokes the old one.
"""

from __future__ import annotations

from pylotto.components._backends.etcd_client import EtcdClient, EtcdSettings
from pylotto.components.base import ClientComponent, ComponentContext
from pylotto.components.lock.base import LockSettings, LockStatus, LockStore
from pylotto.proto.etcd import rpc_pb2


class EtcdLockSettings(LockSettings, EtcdSettings):
    pass


class EtcdLockStore(ClientComponent[EtcdClient], LockStore):
    Settings = EtcdLockSettings
    settings: EtcdLockSettings

    def __init__(self, name: str, settings: EtcdLockSettings, context: ComponentContext) -> None:
        super().__init__(name, settings, context)
        self.client = EtcdClient(settings, f"lock store {name}")

    async def try_lock(self, resource_id: str, owner: str, expire_seconds: int) -> bool:
        client = self.client
        key = client.key(resource_id)
        lease = await client.grant(expire_seconds)
        reply = await client.txn([client.compare(key, "CREATE", 0)],
                                 [client.put(key, owner.encode(), lease)])
        if not reply.succeeded:
            await client.revoke(lease)
        return bool(reply.succeeded)

    async def _holder_status(self, reply: rpc_pb2.TxnResponse) -> LockStatus:
        """The status of a failed owner compare: no lease, or someone else's."""
        kvs = reply.responses[0].response_range.kvs
        return LockStatus.LOCK_BELONG_TO_OTHERS if kvs else LockStatus.LOCK_UNEXIST

    async def unlock(self, resource_id: str, owner: str) -> LockStatus:
        client = self.client
        key = client.key(resource_id)
        reply = await client.txn([client.compare(key, "VALUE", owner.encode())],
                                 [client.get(key), client.delete(key)], [client.get(key)])
        if not reply.succeeded:
            return await self._holder_status(reply)
        lease = reply.responses[0].response_range.kvs[0].lease
        if lease:
            await client.revoke(lease)
        return LockStatus.SUCCESS

    async def keep_alive(self, resource_id: str, owner: str, expire_seconds: int) -> LockStatus:
        client = self.client
        key = client.key(resource_id)
        lease = await client.grant(expire_seconds)
        reply = await client.txn([client.compare(key, "VALUE", owner.encode())],
                                 [client.get(key), client.put(key, owner.encode(), lease)],
                                 [client.get(key)])
        if not reply.succeeded:
            await client.revoke(lease)
            return await self._holder_status(reply)
        old = reply.responses[0].response_range.kvs[0].lease
        if old:
            await client.revoke(old)
        return LockStatus.SUCCESS
