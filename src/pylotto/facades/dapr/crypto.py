"""Dapr's crypto API over gRPC, as daprd's ``pkg/api/grpc/crypto.go`` and the subtle-crypto
verbs of ``pkg/api/universal`` (docs/crypto.md).

``EncryptAlpha1`` / ``DecryptAlpha1``: the first message carries the options (it must come
within 5 s), every message may carry a payload chunk whose ``seq`` counts from 0; the answer
is the ``dapr.io/enc/v1`` output, one message per piece the scheme produces (the header, then
each segment), ``seq`` counting from 0. Nothing is held but the segment in hand.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from dapr.proto.common.v1 import common_pb2
from dapr.proto.runtime.v1 import crypto_pb2

from pylotto.capabilities.crypto import EncryptOptions
from pylotto.capabilities.crypto.api import bad_request, failed
from pylotto.facades.common.base import RuntimeRpcs

FIRST_CHUNK_TIMEOUT = 5.0


async def _first(requests: AsyncIterator[Any]) -> Any:
    try:
        async with asyncio.timeout(FIRST_CHUNK_TIMEOUT):
            return await anext(requests)
    except TimeoutError:
        raise bad_request("error waiting for first message: context deadline exceeded") \
            from None
    except StopAsyncIteration:
        raise failed("error receiving the first message: EOF") from None


async def payloads(first: Any, requests: AsyncIterator[Any]) -> AsyncIterator[bytes]:
    """The data of ``first`` and of every following message, their ``seq`` checked."""
    expected = 0
    message = first
    while True:
        if message.HasField("payload"):
            if message.payload.seq != expected:
                raise failed(f"invalid sequence number received: {message.payload.seq} "
                             f"(expected: {expected})")
            expected += 1
            if message.payload.data:
                yield message.payload.data
        try:
            message = await anext(requests)
        except StopAsyncIteration:
            return
        if message.HasField("options"):
            raise failed("options found in non-leading message")


async def _numbered(pieces: AsyncIterator[bytes], response: Any) -> AsyncIterator[Any]:
    seq = 0
    async for piece in pieces:
        if piece:
            yield response(payload=common_pb2.StreamPayload(data=piece, seq=seq))
            seq += 1


class DaprCryptoRpcs(RuntimeRpcs):
    async def EncryptAlpha1(self, requests: AsyncIterator[Any],
                            context: Any) -> AsyncIterator[Any]:
        first = await _first(requests)
        if not first.HasField("options"):
            raise bad_request("first message does not contain the required options")
        options = first.options
        if not options.key_name:
            raise bad_request("missing property 'keyName' in the options message")
        if not options.key_wrap_algorithm:
            raise bad_request("missing property 'keyWrapAlgorithm' in the options message")
        output = await self.services.crypto.encrypt(
            options.component_name, payloads(first, requests), EncryptOptions(
                options.key_name, options.key_wrap_algorithm, options.data_encryption_cipher,
                options.omit_decryption_key_name, options.decryption_key_name))
        async for message in _numbered(output, crypto_pb2.EncryptResponse):
            yield message

    async def DecryptAlpha1(self, requests: AsyncIterator[Any],
                            context: Any) -> AsyncIterator[Any]:
        first = await _first(requests)
        if not first.HasField("options"):
            raise bad_request("first message does not contain the required options")
        output = await self.services.crypto.decrypt(
            first.options.component_name, payloads(first, requests), first.options.key_name)
        async for message in _numbered(output, crypto_pb2.DecryptResponse):
            yield message

    async def SubtleGetKeyAlpha1(self, request: Any, context: Any) -> Any:
        crypto = self.services.crypto
        crypto.provider(request.component_name)
        if request.format not in (crypto_pb2.SubtleGetKeyRequest.PEM,
                                  crypto_pb2.SubtleGetKeyRequest.JSON):
            raise bad_request("invalid key format")
        key = await crypto.get_key(request.component_name, request.name)
        from pylotto.components.crypto.keys import public_jwk, public_pem  # cryptography

        if request.format == crypto_pb2.SubtleGetKeyRequest.PEM:
            public = public_pem(key)
        else:
            public = json.dumps(public_jwk(key), separators=(",", ":"))
        return crypto_pb2.SubtleGetKeyResponse(name=request.name, public_key=public)

    async def SubtleEncryptAlpha1(self, request: Any, context: Any) -> Any:
        r = request
        ciphertext, tag = await self.services.crypto.subtle(
            r.component_name, "failed to encrypt", "encrypt", lambda p: p.encrypt(
                r.plaintext, r.algorithm, r.key_name, r.nonce, r.associated_data))
        return crypto_pb2.SubtleEncryptResponse(ciphertext=ciphertext, tag=tag)

    async def SubtleDecryptAlpha1(self, request: Any, context: Any) -> Any:
        r = request
        plaintext = await self.services.crypto.subtle(
            r.component_name, "failed to decrypt", "decrypt", lambda p: p.decrypt(
                r.ciphertext, r.algorithm, r.key_name, r.nonce, r.tag, r.associated_data))
        return crypto_pb2.SubtleDecryptResponse(plaintext=plaintext)

    async def SubtleWrapKeyAlpha1(self, request: Any, context: Any) -> Any:
        r = request
        self.services.crypto.provider(r.component_name)
        if not r.plaintext_key:
            raise failed("failed to import key: empty key")
        wrapped, tag = await self.services.crypto.subtle(
            r.component_name, "failed to wrap key", "wrapKey", lambda p: p.wrap_key(
                r.plaintext_key, r.algorithm, r.key_name, r.nonce, r.associated_data))
        return crypto_pb2.SubtleWrapKeyResponse(wrapped_key=wrapped, tag=tag)

    async def SubtleUnwrapKeyAlpha1(self, request: Any, context: Any) -> Any:
        r = request
        key = await self.services.crypto.subtle(
            r.component_name, "failed to unwrap key", "unwrapKey", lambda p: p.unwrap_key(
                r.wrapped_key, r.algorithm, r.key_name, r.nonce, r.tag, r.associated_data))
        return crypto_pb2.SubtleUnwrapKeyResponse(plaintext_key=key)

    async def SubtleSignAlpha1(self, request: Any, context: Any) -> Any:
        r = request
        signature = await self.services.crypto.subtle(
            r.component_name, "failed to sign", "sign",
            lambda p: p.sign(r.digest, r.algorithm, r.key_name))
        return crypto_pb2.SubtleSignResponse(signature=signature)

    async def SubtleVerifyAlpha1(self, request: Any, context: Any) -> Any:
        r = request
        valid = await self.services.crypto.subtle(
            r.component_name, "failed to verify signature", "verify",
            lambda p: p.verify(r.digest, r.signature, r.algorithm, r.key_name))
        return crypto_pb2.SubtleVerifyResponse(valid=valid)

