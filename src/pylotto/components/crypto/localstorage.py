"""``crypto.dapr.localstorage``: keys are files in the folder ``path`` (components-contrib
``crypto/localstorage``). A key's name is its file name (a name with ``..`` is refused, so no
key outside the folder is read); ``.json`` files are JWKs, ``.pem`` files PEM, others sniffed
(:mod:`pylotto.components.crypto.keys`). Files are read on every use, so keys can be added or
replaced without a restart. Operations honour the key's ``alg``, ``use`` and ``key_ops``."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from pydantic import Field, field_validator

from pylotto.components.base import ComponentContext
from pylotto.components.crypto import algorithms
from pylotto.components.crypto.algorithms import CryptoFailure
from pylotto.components.crypto.base import CryptoProvider
from pylotto.components.crypto.keys import Key, KeyParseError, parse_key
from pylotto.core.metadata import ComponentSettings

T = TypeVar("T")

_TYPES = {".json": "application/json", ".pem": "application/x-pem-file"}


class LocalStorageSettings(ComponentSettings):
    path: str = Field(alias="path")
    key_id: str = Field("", alias="keyID")
    """The key Layotto's ``Encrypt`` uses when the request names none (Layotto's ``KeyID``)."""

    @field_validator("path")
    @classmethod
    def _folder(cls, value: str) -> str:
        if not value:
            raise ValueError("metadata property 'path' is required")
        folder = Path(value)
        if not folder.exists():
            raise ValueError(f"could not stat path '{value}': no such file or directory")
        if not folder.is_dir():
            raise ValueError(f"path '{value}' is not a directory")
        return value


class LocalStorageCrypto(CryptoProvider):
    Settings = LocalStorageSettings

    def __init__(self, name: str, settings: LocalStorageSettings,
                 context: ComponentContext) -> None:
        super().__init__(name, settings, context)
        self.folder = Path(settings.path)
        self.key_id = settings.key_id

    @property
    def default_key(self) -> str:
        return self.key_id

    async def retrieve(self, name: str) -> Key:
        if ".." in name:
            raise CryptoFailure("invalid key path: cannot contain '..'")
        path = self.folder / name
        try:
            data = await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError:
            raise CryptoFailure(f"failed to load key '{name}': open {path}: no such file or "
                                "directory") from None
        except OSError as exc:
            raise CryptoFailure(f"failed to load key '{name}': {exc.strerror or exc}") from None
        try:
            return parse_key(data, _TYPES.get(path.suffix.lower(), ""))
        except KeyParseError as exc:
            raise CryptoFailure(f"failed to parse key from secret: {exc.message}") from None

    async def _usable(self, name: str, operation: str, algorithm: str, what: str) -> Key:
        try:
            key = await self.retrieve(name)
        except CryptoFailure as exc:
            raise CryptoFailure(f"failed to retrieve the {what}: {exc.message}") from None
        if not key.can(operation):
            raise CryptoFailure(f"key cannot perform the '{operation}' operation")
        if not key.allows(algorithm):
            raise CryptoFailure(f"key cannot be used with algorithm '{algorithm}'")
        return key

    async def get_key(self, name: str) -> Key:
        key = await self.retrieve(name)
        if key.kty == "oct":
            raise CryptoFailure("key not found")
        return key

    async def encrypt(self, plaintext: bytes, algorithm: str, key_name: str, nonce: bytes,
                      associated_data: bytes) -> tuple[bytes, bytes]:
        key = await self._usable(key_name, "encrypt", algorithm, "key")
        return await _wrapped("failed to encrypt data", key, lambda: algorithms.encrypt(
            plaintext, algorithm, key, nonce, associated_data))

    async def decrypt(self, ciphertext: bytes, algorithm: str, key_name: str, nonce: bytes,
                      tag: bytes, associated_data: bytes) -> bytes:
        key = await self._usable(key_name, "decrypt", algorithm, "key")
        return await _wrapped("failed to decrypt data", key, lambda: algorithms.decrypt(
            ciphertext, algorithm, key, nonce, tag, associated_data))

    async def wrap_key(self, plaintext_key: bytes, algorithm: str, key_name: str, nonce: bytes,
                       associated_data: bytes) -> tuple[bytes, bytes]:
        key = await self._usable(key_name, "wrapKey", algorithm, "key encryption key")
        return await _wrapped("failed to encrypt data", key, lambda: algorithms.encrypt(
            plaintext_key, algorithm, key, nonce, associated_data))

    async def unwrap_key(self, wrapped_key: bytes, algorithm: str, key_name: str, nonce: bytes,
                         tag: bytes, associated_data: bytes) -> bytes:
        key = await self._usable(key_name, "unwrapKey", algorithm, "key encryption key")
        return await _wrapped("failed to decrypt data", key, lambda: algorithms.decrypt(
            wrapped_key, algorithm, key, nonce, tag, associated_data))

    async def sign(self, digest: bytes, algorithm: str, key_name: str) -> bytes:
        key = await self._usable(key_name, "sign", algorithm, "key")
        return await _wrapped("failed to sign message", key,
                        lambda: algorithms.sign(digest, algorithm, key))

    async def verify(self, digest: bytes, signature: bytes, algorithm: str,
                     key_name: str) -> bool:
        key = await self._usable(key_name, "verify", algorithm, "key")
        return await _wrapped("failed to validate the signature", key,
                        lambda: algorithms.verify(digest, signature, algorithm, key))


async def _wrapped(prefix: str, key: Key, operation: Callable[[], T]) -> T:
    """``operation``, its failure worded as components-contrib's; RSA private-key work (some
    milliseconds for a 4096-bit key) runs off the event loop."""
    try:
        if key.kty == "RSA" and key.private is not None:
            return await asyncio.to_thread(operation)
        return operation()
    except CryptoFailure as exc:
        raise CryptoFailure(f"{prefix}: {exc.message}") from None
