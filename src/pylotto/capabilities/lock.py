"""Distributed lock: try_lock, unlock and keep_alive on a named lock store.

The rules shared by every facade live here, in Layotto's order (``api_lock.go``): no lock store
at all → NotConfigured; empty ``resource_id``, empty ``lock_owner``, ``expire <= 0`` →
InvalidArgument; unknown store → ComponentNotFound. The resource id then becomes
``lock|||{prefix}||{resource_id}`` where the prefix comes from the store's ``keyPrefix``
(default ``appid``; see :mod:`pylotto.core.keys`), so two apps never share a lock by
accident. Component errors keep their class and gain a message saying what failed.
"""

from __future__ import annotations

from pylotto.capabilities.base import Capability
from pylotto.components.lock.base import LockStatus, LockStore
from pylotto.core.errors import InvalidArgument, PylottoError
from pylotto.core.keys import check_no_separator, key_prefix, prefixed

NAMESPACE = "lock|||"
"""Every stored lock key starts with this, as in Layotto (``lock`` + ``|||``)."""


class LockCapability(Capability[LockStore]):
    """The lock API over the configured lock stores."""

    def _validate(self, store_name: str, resource_id: str, lock_owner: str,
                  expire: int | None = None, where: str = "") -> tuple[LockStore, str]:
        """The store and the stored key, after the checks in Layotto's order (``where``:
        the operation an illegal resource id fails, for the Dapr dialect)."""
        if len(self.components) == 0:
            raise self.components.lookup_error("not_configured", store_name)
        if not resource_id:
            raise InvalidArgument(f"ResourceId is empty in lock store {store_name}",
                                  where="lock.resource_id", store=store_name)
        if not lock_owner:
            raise InvalidArgument(f"LockOwner is empty in lock store {store_name}",
                                  where="lock.owner", store=store_name)
        if expire is not None and expire <= 0:
            raise InvalidArgument(f"Expire is not positive in lock store {store_name}",
                                  where="lock.expiry", store=store_name)
        store = self.components.get(store_name)
        try:
            check_no_separator(resource_id)
        except InvalidArgument as err:
            raise err.at(where, store=store_name) from None
        prefix = key_prefix(store.settings.key_prefix, app_id=self.context.app_id,
                            component=store_name)
        return store, NAMESPACE + prefixed(prefix, resource_id)

    async def try_lock(self, store_name: str, resource_id: str, lock_owner: str,
                       expire: int) -> bool:
        """Take the lock for ``expire`` seconds; False (no error) when someone holds it."""
        store, key = self._validate(store_name, resource_id, lock_owner, expire,
                                    "lock.try_lock")
        try:
            return await self.call(store_name, lambda: store.try_lock(key, lock_owner, expire))
        except PylottoError as err:
            raise type(err)(f"failed to lock {resource_id} in lock store {store_name}: "
                            f"{err.message}", where="lock.try_lock",
                            detail=err.message) from err

    async def unlock(self, store_name: str, resource_id: str, lock_owner: str) -> LockStatus:
        """SUCCESS, LOCK_UNEXIST (not held, or expired) or LOCK_BELONG_TO_OTHERS."""
        store, key = self._validate(store_name, resource_id, lock_owner, where="lock.unlock")
        try:
            return await self.call(store_name, lambda: store.unlock(key, lock_owner))
        except PylottoError as err:
            raise type(err)(f"failed to unlock {resource_id} in lock store {store_name}: "
                            f"{err.message}", where="lock.unlock", detail=err.message) from err

    async def keep_alive(self, store_name: str, resource_id: str, lock_owner: str,
                         expire: int) -> LockStatus:
        """Extend the caller's lease to ``expire`` seconds from now.

        SUCCESS, LOCK_UNEXIST (not held, or already expired) or LOCK_BELONG_TO_OTHERS.
        """
        store, key = self._validate(store_name, resource_id, lock_owner, expire)
        try:
            return await self.call(store_name, lambda: store.keep_alive(
                key, lock_owner, expire))
        except PylottoError as err:
            raise type(err)(f"failed to keep lock {resource_id} alive in lock store "
                            f"{store_name}: {err.message}") from err
