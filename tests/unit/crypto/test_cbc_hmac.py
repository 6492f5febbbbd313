"""dapr/kit's AES-CBC-HMAC AEADs (``A128CBC-HS256``, ``A192CBC-HS384``, ``A256CBC-HS512``:
RFC 7518 §5.2) through ``crypto.dapr.localstorage``'s subtle encrypt/decrypt: RFC 7518's known
answer, round trips, and every tampering refused."""

from __future__ import annotations

import base64
import logging
import os
from pathlib import Path

import pytest

from pylotto.components.base import ComponentContext
from pylotto.components.crypto.algorithms import SYMMETRIC, CryptoFailure
from pylotto.components.crypto.localstorage import LocalStorageCrypto, LocalStorageSettings

SIZES = {"A128CBC-HS256": 32, "A192CBC-HS384": 48, "A256CBC-HS512": 64}

# RFC 7518 Appendix B.1 (AES_128_CBC_HMAC_SHA_256)
B1_KEY = bytes(range(32))
B1_PLAIN = (b"A cipher system must not be required to be secret, and it must be able to "
            b"fall into the hands of the enemy without inconvenience")
B1_IV = bytes.fromhex("1af38c2dc2b96ffdd86694092341bc04")
B1_AAD = b"The second principle of Auguste Kerckhoffs"
B1_CIPHER_START = bytes.fromhex("c80edfa32ddf39d5ef00c0b468834279")
B1_TAG = bytes.fromhex("652c3fa36b0a7c5b3219fab3a30bc1c4")


@pytest.fixture
def store(tmp_path: Path) -> LocalStorageCrypto:
    (tmp_path / "rfc").write_bytes(base64.b64encode(B1_KEY))
    for algorithm, size in SIZES.items():
        (tmp_path / algorithm).write_bytes(base64.b64encode(os.urandom(size)))
    (tmp_path / "short").write_bytes(base64.b64encode(os.urandom(16)))
    return LocalStorageCrypto("keys", LocalStorageSettings(path=str(tmp_path)),
                              ComponentContext("app", tmp_path, logging.getLogger("t")))


def test_listed_as_symmetric() -> None:
    assert set(SIZES) <= set(SYMMETRIC)


async def test_rfc_7518_known_answer(store: LocalStorageCrypto) -> None:
    sealed, tag = await store.encrypt(B1_PLAIN, "A128CBC-HS256", "rfc", B1_IV, B1_AAD)
    assert sealed[:16] == B1_CIPHER_START and len(sealed) == 144
    assert tag == B1_TAG
    assert await store.decrypt(sealed, "A128CBC-HS256", "rfc", B1_IV, tag, B1_AAD) == B1_PLAIN


@pytest.mark.parametrize("algorithm", list(SIZES))
async def test_round_trip_and_tampering_refused(store: LocalStorageCrypto,
                                                algorithm: str) -> None:
    nonce, aad = os.urandom(16), b"header"
    for plain in (b"", b"x" * 16, os.urandom(1000)):
        sealed, tag = await store.encrypt(plain, algorithm, algorithm, nonce, aad)
        assert len(tag) == SIZES[algorithm] // 2 and len(sealed) % 16 == 0
        assert await store.decrypt(sealed, algorithm, algorithm, nonce, tag, aad) == plain
    flipped = bytes([sealed[0] ^ 1]) + sealed[1:]
    bad_tag = tag[:-1] + bytes([tag[-1] ^ 1])
    for args in ((flipped, nonce, tag, aad), (sealed, nonce, bad_tag, aad),
                 (sealed, nonce, tag, b"other"), (sealed, os.urandom(16), tag, aad)):
        with pytest.raises(CryptoFailure, match="message authentication failed"):
            await store.decrypt(args[0], algorithm, algorithm, args[1], args[2], args[3])
    with pytest.raises(CryptoFailure, match="invalid tag"):
        await store.decrypt(sealed, algorithm, algorithm, nonce, tag[:-1], aad)
    with pytest.raises(CryptoFailure, match="invalid nonce"):
        await store.encrypt(b"x", algorithm, algorithm, os.urandom(12), aad)


async def test_a_key_of_another_size_is_a_mismatch(store: LocalStorageCrypto) -> None:
    for algorithm in SIZES:
        with pytest.raises(CryptoFailure, match="key type mismatch"):
            await store.encrypt(b"x", algorithm, "short", os.urandom(16), b"")
    with pytest.raises(CryptoFailure, match="key type mismatch"):
        await store.encrypt(b"x", "A256CBC-HS512", "A128CBC-HS256", os.urandom(16), b"")
