"""The crypto capability: what daprd's ``pkg/api/universal`` (subtle crypto, the key-wrap
functions of the stream scheme) and Layotto's ``pkg/grpc/cryption`` do, on crypto providers.

Errors, by ``where`` (the Dapr table words them as daprd): ``crypto`` the provider lookup,
``crypto.request`` a malformed request (``invalid request: ...``), ``crypto.operation`` a
failed operation (``failed to perform operation: ...``), ``crypto.get_key`` a key that cannot
be read, ``crypto.cryption`` Layotto's calls.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from pylotto.capabilities.base import Capability
from pylotto.capabilities.crypto import enc_v1
from pylotto.capabilities.crypto.enc_v1 import SchemeError
from pylotto.components.crypto.base import CryptoProvider
from pylotto.core.errors import Internal, InvalidArgument, PylottoError

if TYPE_CHECKING:  # keys.py imports cryptography: only a crypto component loads it
    from pylotto.components.crypto.keys import Key

T = TypeVar("T")
CRYPTO_OP = "crypto_op"
"""daprd's operation label of every crypto call (pkg/diagnostics CryptoOp)."""
log = logging.getLogger("pylotto.crypto")


def bad_request(detail: str) -> InvalidArgument:
    return InvalidArgument(detail, where="crypto.request", detail=detail)


def failed(detail: str) -> Internal:
    return Internal(detail, where="crypto.operation", detail=detail)


@dataclass(frozen=True, slots=True)
class EncryptOptions:
    key_name: str
    key_wrap_algorithm: str
    data_encryption_cipher: str = ""
    omit_decryption_key_name: bool = False
    decryption_key_name: str = ""


class CryptoCapability(Capability[CryptoProvider]):
    def provider(self, name: str, operation: str = "") -> CryptoProvider:
        return self.components.get(name, operation)

    # --- the stream scheme ---------------------------------------------------------------

    async def encrypt(self, component_name: str, chunks: AsyncIterator[bytes],
                      options: EncryptOptions) -> AsyncIterator[bytes]:
        """The ``dapr.io/enc/v1`` document of ``chunks``; the key is wrapped before this
        returns (so a bad key fails before any data is read)."""
        provider = self.provider(component_name)

        async def wrap(file_key: bytes, algorithm: str, key_name: str) -> bytes:
            try:
                wrapped, _ = await self.call(component_name, lambda: provider.wrap_key(
                    file_key, algorithm, key_name, b"", b""), CRYPTO_OP)
            except PylottoError as err:
                raise SchemeError(err.message) from None
            return wrapped

        try:
            document = await enc_v1.encrypt(
                chunks, wrap, options.key_name, options.key_wrap_algorithm.upper(),
                cipher=(options.data_encryption_cipher or "AES-GCM").upper(),
                decryption_key_name=options.decryption_key_name,
                omit_key_name=options.omit_decryption_key_name)
        except SchemeError as err:
            raise failed(str(err)) from None
        return _mapped(document)

    async def decrypt(self, component_name: str, chunks: AsyncIterator[bytes],
                      key_name: str = "") -> AsyncIterator[bytes]:
        """The plaintext of the document ``chunks``; its header is read and checked before
        this returns."""
        provider = self.provider(component_name)

        async def unwrap(wrapped: bytes, algorithm: str, name: str) -> bytes:
            try:
                return await self.call(component_name, lambda: provider.unwrap_key(
                    wrapped, algorithm, name, b"", b"", b""), CRYPTO_OP)
            except PylottoError as err:
                raise SchemeError(err.message) from None

        try:
            plain = await enc_v1.decrypt(chunks, unwrap, key_name)
        except SchemeError as err:
            raise failed(str(err)) from None
        return _mapped(plain)

    # --- subtle crypto -------------------------------------------------------------------

    async def get_key(self, component_name: str, name: str) -> Key:
        provider = self.provider(component_name)
        try:
            return await self.call(component_name, lambda: provider.get_key(name), CRYPTO_OP)
        except PylottoError as err:
            raise Internal(err.message, where="crypto.get_key", key=name,
                           detail=err.message) from None

    async def subtle(self, component_name: str, verb: str, attempt: str,
                     call: Callable[[CryptoProvider], Awaitable[T]]) -> T:
        """``call`` on the provider; a failure is daprd's undisclosing ``failed to <verb>``
        (the component's reason is logged at debug level, as daprd does)."""
        provider = self.provider(component_name)
        try:
            return await self.call(component_name, lambda: call(provider), CRYPTO_OP)
        except PylottoError as err:
            log.debug("crypto %s %s: %s", component_name, attempt, err.message)
            raise failed(verb) from None

    # --- Layotto's CryptionService -------------------------------------------------------

    async def cryption_encrypt(self, component_name: str, plaintext: bytes,
                               key_id: str) -> tuple[bytes, str]:
        """One ``dapr.io/enc/v1`` document naming its key; the key is ``key_id``, else the
        component's ``keyID``; its type picks the wrap (RSA: RSA-OAEP-256, AES: A256KW)."""
        provider = self.provider(component_name, "cryption")
        key_id = key_id or provider.default_key
        if not key_id:
            raise InvalidArgument("key_id is empty and the component has no keyID",
                                  where="crypto.cryption")
        try:
            key = await self.call(component_name, lambda: provider.retrieve(key_id),
                                  CRYPTO_OP)
        except PylottoError as err:
            raise Internal(err.message, where="crypto.cryption") from None
        algorithm = "RSA-OAEP-256" if key.kty == "RSA" else "A256KW"
        try:
            stream = await self.encrypt(component_name, _one(plaintext),
                                        EncryptOptions(key_id, algorithm))
            document = b"".join([part async for part in stream])
        except PylottoError as err:
            raise Internal(err.message, where="crypto.cryption") from None
        return document, key_id

    async def cryption_decrypt(self, component_name: str, ciphertext: bytes) -> tuple[bytes, str]:
        self.provider(component_name, "cryption")
        try:
            key_id = enc_v1.Manifest.decode(ciphertext.split(b"\n", 2)[1]).key_name \
                if ciphertext.count(b"\n") >= 2 else ""
        except SchemeError:
            key_id = ""
        try:
            stream = await self.decrypt(component_name, _one(ciphertext))
            plain = b"".join([part async for part in stream])
        except PylottoError as err:
            raise Internal(err.message, where="crypto.cryption") from None
        return plain, key_id


async def _one(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def _mapped(stream: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """Scheme errors raised while the stream runs, as ``crypto.operation`` errors."""
    try:
        async for part in stream:
            yield part
    except SchemeError as err:
        raise failed(str(err)) from None
