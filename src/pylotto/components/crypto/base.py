"""Crypto provider contract: Dapr's ``SubtleCrypto`` (components-contrib ``crypto``) — keys
named by the caller, used where they are kept."""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING

from pylotto.components.base import Component

if TYPE_CHECKING:  # keys.py imports cryptography: loaded by the providers that read keys
    from pylotto.components.crypto.keys import Key


class CryptoProvider(Component):
    """Each verb raises a pylotto error whose message is components-contrib's text."""

    @property
    def default_key(self) -> str:
        """The key Layotto's ``Encrypt`` uses when the request names none ("": none)."""
        return ""

    @abc.abstractmethod
    async def retrieve(self, name: str) -> Key:
        """Key ``name`` whole (private parts included): for the runtime, never sent out."""

    @abc.abstractmethod
    async def get_key(self, name: str) -> Key:
        """The public part of key ``name`` (symmetric keys: ``key not found``)."""

    @abc.abstractmethod
    async def encrypt(self, plaintext: bytes, algorithm: str, key_name: str, nonce: bytes,
                      associated_data: bytes) -> tuple[bytes, bytes]: ...

    @abc.abstractmethod
    async def decrypt(self, ciphertext: bytes, algorithm: str, key_name: str, nonce: bytes,
                      tag: bytes, associated_data: bytes) -> bytes: ...

    @abc.abstractmethod
    async def wrap_key(self, plaintext_key: bytes, algorithm: str, key_name: str, nonce: bytes,
                       associated_data: bytes) -> tuple[bytes, bytes]: ...

    @abc.abstractmethod
    async def unwrap_key(self, wrapped_key: bytes, algorithm: str, key_name: str, nonce: bytes,
                         tag: bytes, associated_data: bytes) -> bytes: ...

    @abc.abstractmethod
    async def sign(self, digest: bytes, algorithm: str, key_name: str) -> bytes: ...

    @abc.abstractmethod
    async def verify(self, digest: bytes, signature: bytes, algorithm: str,
                     key_name: str) -> bool: ...
