"""components-contrib's own crypto conformance keys (tests/conformance/fixtures/crypto/
localstorage, copied to contrib_keys/) through ``crypto.dapr.localstorage``, with the
algorithms its tests.yml lists for each: every key file form Dapr's conformance suite uses is
read, and each algorithm pylotto implements round-trips (those it lacks are refused with
kit's ``unsupported algorithm``)."""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import pytest

from pylotto.components.base import ComponentContext
from pylotto.components.crypto.algorithms import SIGNATURE, CryptoFailure
from pylotto.components.crypto.localstorage import LocalStorageCrypto, LocalStorageSettings

KEYS = Path(__file__).parent / "contrib_keys"
MISSING = {"XC20P", "XC20PKW"}
"""kit's XChaCha20 ciphers: ``cryptography`` has no XChaCha20 (docs/crypto.md)."""

CASES = [  # (private or symmetric key, its public key, algorithms), as contrib's tests.yml
    ("ed25519-private.pem", "ed25519-public.pem", ["EdDSA"]),
    ("p256-private.json", "p256-public.json", ["ES256"]),
    ("rsa-private.pem", "rsa-public.json", ["RSA-OAEP"]),
    ("rsa-private.pem", "rsa-private.pem", ["PS256", "PS384", "PS512", "RS256", "RS384",
                                             "RS512", "RSA1_5", "RSA-OAEP", "RSA-OAEP-256",
                                             "RSA-OAEP-384", "RSA-OAEP-512"]),
    ("symmetric-256.b64", "symmetric-256.b64", ["A256CBC", "A256GCM", "A256KW", "C20P",
                                                 "XC20P", "C20PKW", "XC20PKW",
                                                 "A128CBC-HS256"]),
]


@pytest.fixture
def store() -> LocalStorageCrypto:
    return LocalStorageCrypto("mycrypto", LocalStorageSettings(path=str(KEYS)),
                              ComponentContext("app", KEYS, logging.getLogger("t")))


@pytest.mark.parametrize(("private", "public", "algorithms"), CASES)
async def test_contrib_keys(store: LocalStorageCrypto, private: str, public: str,
                            algorithms: list[str]) -> None:
    for algorithm in algorithms:
        if algorithm in MISSING:
            with pytest.raises(CryptoFailure, match="unsupported algorithm"):
                await store.encrypt(b"x" * 32, algorithm, private, os.urandom(12), b"")
            continue
        if algorithm in SIGNATURE:
            digest = hashlib.new(
                "sha" + (algorithm[-3:] if algorithm[-3:].isdigit() else "256"),
                b"message").digest()
            signature = await store.sign(digest, algorithm, private)
            assert await store.verify(digest, signature, algorithm, public), algorithm
            assert not await store.verify(digest[::-1], signature, algorithm, public)
            continue
        nonce = os.urandom(16 if "CBC" in algorithm else 12)
        plain = os.urandom(32)
        sealed, tag = await store.encrypt(plain, algorithm, public, nonce, b"")
        assert await store.decrypt(sealed, algorithm, private, nonce, tag, b"") == plain


async def test_public_keys_and_the_key_alg(store: LocalStorageCrypto) -> None:
    for name in ("ed25519-public.pem", "p256-public.json", "rsa-public.json",
                 "rsa-private.pem"):
        key = await store.get_key(name)
        assert key.public is not None
    with pytest.raises(CryptoFailure, match="key cannot be used with algorithm 'RSA-OAEP-256'"):
        await store.encrypt(b"x", "RSA-OAEP-256", "rsa-public.json", b"", b"")
