"""Lock store contract.

A lock is a lease on a resource held by one owner. Resource ids reaching a store are already
namespaced and prefixed (``lock|||`` + ``keyPrefix``: the capability's job); owners and expiry
times are validated before the store sees them.

Every verb must be atomic in the backend, so that concurrent callers (in one sidecar or in
several sharing the backend) agree on one owner:

- ``try_lock``: create the lease only if no live lease exists (Redis ``SET NX EX``, an etcd
  transaction on ``CreateRevision == 0`` with a lease, a ZooKeeper ephemeral node, an
  ``INSERT ... ON CONFLICT`` over an expired row in SQL). Never blocks, never re-enters: a live
  lease of any owner, the caller included, makes it return False.
- ``unlock`` and ``keep_alive``: compare the owner and act in one step (a Redis Lua script, an
  etcd transaction comparing the value, ``UPDATE ... WHERE owner = ?`` in SQL).

An expired lease counts as absent everywhere.
"""

from __future__ import annotations

import abc
import enum
from typing import ClassVar

from pydantic import Field

from pylotto.components.base import Component
from pylotto.core.keys import KeyPrefix
from pylotto.core.metadata import ComponentSettings


class LockStatus(enum.IntEnum):
    """Outcome of unlock and keep-alive; the numbers are the wire enums' (Unlock/LockKeepAlive)."""

    SUCCESS = 0
    LOCK_UNEXIST = 1
    """No live lease on the resource (never taken, released, or expired)."""
    LOCK_BELONG_TO_OTHERS = 2
    INTERNAL_ERROR = 3


class LockSettings(ComponentSettings):
    """Keys every lock store accepts; ``keyPrefix`` is applied by the capability layer."""

    key_prefix: KeyPrefix = Field("appid", alias="keyPrefix")


class LockStore(Component):
    """Non-blocking, non-reentrant leases with an expiry in seconds."""

    Settings: ClassVar[type[ComponentSettings]] = LockSettings
    settings: LockSettings

    @abc.abstractmethod
    async def try_lock(self, resource_id: str, owner: str, expire_seconds: int) -> bool:
        """Take the lease for ``expire_seconds`` if nobody holds it; False when held."""

    @abc.abstractmethod
    async def unlock(self, resource_id: str, owner: str) -> LockStatus:
        """Release the lease if ``owner`` holds it.

        SUCCESS, LOCK_UNEXIST (no live lease) or LOCK_BELONG_TO_OTHERS (left untouched).
        """

    @abc.abstractmethod
    async def keep_alive(self, resource_id: str, owner: str, expire_seconds: int) -> LockStatus:
        """Renew the lease of ``owner``: it now expires ``expire_seconds`` from now.

        SUCCESS, LOCK_UNEXIST (no live lease: an expired one is not revived) or
        LOCK_BELONG_TO_OTHERS (left untouched).
        """
