"""Key files read as dapr/kit's ParseKey reads them, and the local store's checks."""

from __future__ import annotations

import base64
import json
import logging
import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from pylotto.components.base import ComponentContext
from pylotto.components.crypto.algorithms import CryptoFailure
from pylotto.components.crypto.keys import parse_key, public_jwk
from pylotto.components.crypto.localstorage import LocalStorageCrypto, LocalStorageSettings


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@pytest.mark.parametrize("encode", [
    lambda k: k,  # raw bytes of 16/24/32 are symmetric even if they start with "{"
    lambda k: base64.b64encode(k),
    lambda k: base64.b64encode(k) + b"\n",
    lambda k: base64.b64encode(k).rstrip(b"="),
    lambda k: base64.urlsafe_b64encode(k).rstrip(b"="),
])
def test_symmetric_keys(encode: object) -> None:
    secret = b"{" + os.urandom(31)
    key = parse_key(encode(secret))  # type: ignore[operator]
    assert (key.kty, key.secret) == ("oct", secret)


def test_jwk_and_pem_keys_agree() -> None:
    private = rsa.generate_private_key(65537, 2048)
    numbers = private.private_numbers()
    n = numbers.public_numbers
    to = lambda i: _b64url(i.to_bytes((i.bit_length() + 7) // 8, "big"))  # noqa: E731
    jwk = json.dumps({"kty": "RSA", "n": to(n.n), "e": to(n.e), "d": to(numbers.d),
                      "p": to(numbers.p), "q": to(numbers.q), "alg": "RSA-OAEP-256",
                      "use": "enc"}).encode()
    from_jwk = parse_key(jwk, "application/json")
    from_pem = parse_key(private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption()))
    assert from_jwk.kty == from_pem.kty == "RSA"
    assert public_jwk(from_jwk) == {**public_jwk(from_pem), "alg": "RSA-OAEP-256", "use": "enc"}
    assert from_jwk.can("wrapKey") and not from_jwk.can("sign")
    assert from_jwk.allows("RSA-OAEP-256") and not from_jwk.allows("RSA1_5")
    public_only = parse_key(private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    assert public_only.private is None and public_only.public is not None


def test_ec_jwk() -> None:
    private = ec.generate_private_key(ec.SECP256R1())
    nums = private.private_numbers()
    jwk = {"kty": "EC", "crv": "P-256", "x": _b64url(nums.public_numbers.x.to_bytes(32, "big")),
           "y": _b64url(nums.public_numbers.y.to_bytes(32, "big")),
           "d": _b64url(nums.private_value.to_bytes(32, "big")), "key_ops": ["sign"]}
    key = parse_key(json.dumps(jwk).encode())
    assert key.kty == "EC" and key.can("sign") and not key.can("verify")
    assert public_jwk(key) == {k: jwk[k] for k in ("crv", "kty", "x", "y")}


async def test_local_store_confines_names_and_checks_key_use(tmp_path: Path) -> None:
    (tmp_path / "signing.json").write_text(json.dumps(
        {"kty": "oct", "k": _b64url(os.urandom(32)), "use": "sig"}))
    (tmp_path / "aes").write_bytes(os.urandom(32))
    store = LocalStorageCrypto("keys", LocalStorageSettings(path=str(tmp_path)),
                               ComponentContext("app", tmp_path, logging.getLogger("t")))
    with pytest.raises(CryptoFailure, match=r"invalid key path: cannot contain '\.\.'"):
        await store.retrieve("../aes")
    with pytest.raises(CryptoFailure, match="key cannot perform the 'wrapKey' operation"):
        await store.wrap_key(os.urandom(32), "A256KW", "signing.json", b"", b"")
    with pytest.raises(CryptoFailure, match=r"^key not found$"):
        await store.get_key("aes")
    with pytest.raises(CryptoFailure, match="failed to encrypt data: key type mismatch"):
        await store.wrap_key(os.urandom(32), "A128KW", "aes", b"", b"")
    with pytest.raises(CryptoFailure, match="failed to encrypt data: invalid nonce"):
        # the stream scheme's CBC wraps get no IV, as in daprd: they cannot be used there
        await store.wrap_key(os.urandom(32), "A256CBC-NOPAD", "aes", b"", b"")
    with pytest.raises(CryptoFailure, match="unsupported algorithm"):
        await store.encrypt(b"x", "XC20P", "aes", b"", b"")
    wrapped, _ = await store.wrap_key(b"k" * 32, "A256KW", "aes", b"", b"")
    assert await store.unwrap_key(wrapped, "A256KW", "aes", b"", b"", b"") == b"k" * 32


def test_settings_need_a_folder(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"could not stat path .*: no such file or directory"):
        LocalStorageSettings(path=str(tmp_path / "missing"))
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="is not a directory"):
        LocalStorageSettings(path=str(tmp_path / "file"))
