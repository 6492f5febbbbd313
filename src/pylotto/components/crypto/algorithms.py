"""dapr/kit ``crypto``'s primitives on ``cryptography``: JOSE algorithm names → the operation,
with kit's checks and error texts (``unsupported algorithm``, ``key type mismatch``, ``invalid
nonce``...). Signatures are over a digest the caller computed (RS*, PS*, ES*); EdDSA signs the
message itself, as in kit. The AES-CBC-HMAC AEADs (``A*CBC-HS*``) are RFC 7518 §5.2's, as
kit's ``aescbcaead``: the key's first half is the MAC key, its second the AES key, the tag the
HMAC of associated data, nonce, ciphertext and the associated data's length in bits, cut to half
the key.

Not here: XChaCha20 (``XC20P``, ``XC20PKW``; kit has them, ``cryptography`` has no XChaCha20):
``unsupported algorithm``, as for the names kit declares but implements nowhere (``A*GCMKW``,
``ECDH-ES*``).
"""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import constant_time, hashes, hmac, padding
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa, utils
from cryptography.hazmat.primitives.asymmetric import padding as asym_padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from cryptography.hazmat.primitives.keywrap import (
    InvalidUnwrap,
    aes_key_unwrap,
    aes_key_wrap,
)

from pylotto.components.crypto.keys import Key
from pylotto.core.errors import Internal

UNSUPPORTED = "unsupported algorithm"
MISMATCH = "key type mismatch"

SYMMETRIC = ("A128CBC", "A192CBC", "A256CBC", "A128CBC-NOPAD", "A192CBC-NOPAD",
             "A256CBC-NOPAD", "A128GCM", "A192GCM", "A256GCM", "A128CBC-HS256",
             "A192CBC-HS384", "A256CBC-HS512", "A128KW", "A192KW", "A256KW", "C20P", "C20PKW")
ASYMMETRIC = ("RSA1_5", "RSA-OAEP", "RSA-OAEP-256", "RSA-OAEP-384", "RSA-OAEP-512")
SIGNATURE = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512",
             "EdDSA")


class CryptoFailure(Internal):
    """An operation the key or algorithm refuses; the text is kit's."""


def _fail(text: str) -> CryptoFailure:
    return CryptoFailure(text)


def _size(algorithm: str) -> int:
    return {"128": 16, "192": 24, "256": 32}.get(algorithm[1:4], 0)


def _hash(algorithm: str) -> hashes.HashAlgorithm:
    return {"256": hashes.SHA256(), "384": hashes.SHA384(), "512": hashes.SHA512()}[
        algorithm[-3:]]


def encrypt(plaintext: bytes, algorithm: str, key: Key, nonce: bytes,
            associated_data: bytes) -> tuple[bytes, bytes]:
    """(ciphertext, tag) — the tag is empty for the non-AEAD algorithms."""
    if algorithm in SYMMETRIC:
        return _encrypt_symmetric(plaintext, algorithm, key, nonce, associated_data)
    if algorithm in ASYMMETRIC:
        public = key.public
        if not isinstance(public, rsa.RSAPublicKey):
            raise _fail(MISMATCH)
        return public.encrypt(plaintext, _rsa_padding(algorithm, associated_data)), b""
    raise _fail(UNSUPPORTED)


def decrypt(ciphertext: bytes, algorithm: str, key: Key, nonce: bytes, tag: bytes,
            associated_data: bytes) -> bytes:
    if algorithm in SYMMETRIC:
        return _decrypt_symmetric(ciphertext, algorithm, key, nonce, tag, associated_data)
    if algorithm in ASYMMETRIC:
        private = key.private
        if not isinstance(private, rsa.RSAPrivateKey):
            raise _fail(MISMATCH)
        try:
            return private.decrypt(ciphertext, _rsa_padding(algorithm, associated_data))
        except ValueError:
            raise _fail("crypto/rsa: decryption error") from None
    raise _fail(UNSUPPORTED)


def _rsa_padding(algorithm: str, label: bytes) -> asym_padding.AsymmetricPadding:
    if algorithm == "RSA1_5":
        return asym_padding.PKCS1v15()
    digest = hashes.SHA1() if algorithm == "RSA-OAEP" else _hash(algorithm)
    return asym_padding.OAEP(asym_padding.MGF1(digest), digest, label or None)


def _secret(key: Key, algorithm: str) -> bytes:
    if key.kty != "oct":
        raise _fail(MISMATCH)
    expected = 32 if algorithm.startswith("C20P") else _size(algorithm)
    if "-HS" in algorithm:  # a MAC key and an AES key of that size
        expected *= 2
    if len(key.secret) != expected:
        raise _fail(MISMATCH)
    return key.secret


def _encrypt_symmetric(plaintext: bytes, algorithm: str, key: Key, nonce: bytes,
                       associated_data: bytes) -> tuple[bytes, bytes]:
    secret = _secret(key, algorithm)
    if "-HS" in algorithm:
        return _seal_cbc_hmac(plaintext, algorithm, secret, nonce, associated_data)
    if "CBC" in algorithm:
        if len(nonce) != 16:
            raise _fail("invalid nonce")
        if algorithm.endswith("NOPAD"):
            if len(plaintext) % 16:
                raise _fail("invalid plaintext length")
        else:
            padder = padding.PKCS7(128).padder()
            plaintext = padder.update(plaintext) + padder.finalize()
        encryptor = Cipher(algorithms.AES(secret), modes.CBC(nonce)).encryptor()
        return encryptor.update(plaintext) + encryptor.finalize(), b""
    if algorithm.endswith("KW") and algorithm.startswith("A"):
        if len(plaintext) < 16 or len(plaintext) % 8:
            raise _fail("aeskw: invalid plaintext length")
        return aes_key_wrap(secret, plaintext), b""
    aead = AESGCM(secret) if "GCM" in algorithm else ChaCha20Poly1305(secret)
    if len(nonce) != 12:
        raise _fail("invalid nonce")
    sealed = aead.encrypt(nonce, plaintext, associated_data or None)
    return sealed[:-16], sealed[-16:]


def _decrypt_symmetric(ciphertext: bytes, algorithm: str, key: Key, nonce: bytes, tag: bytes,
                       associated_data: bytes) -> bytes:
    secret = _secret(key, algorithm)
    if "-HS" in algorithm:
        return _open_cbc_hmac(ciphertext, algorithm, secret, nonce, tag, associated_data)
    if "CBC" in algorithm:
        if len(nonce) != 16:
            raise _fail("invalid nonce")
        if len(ciphertext) % 16:
            raise _fail("invalid ciphertext length")
        decryptor = Cipher(algorithms.AES(secret), modes.CBC(nonce)).decryptor()
        plain = decryptor.update(ciphertext) + decryptor.finalize()
        if algorithm.endswith("NOPAD"):
            return plain
        try:
            unpadder = padding.PKCS7(128).unpadder()
            return unpadder.update(plain) + unpadder.finalize()
        except ValueError:
            raise _fail("invalid padding") from None
    if algorithm.endswith("KW") and algorithm.startswith("A"):
        try:
            return aes_key_unwrap(secret, ciphertext)
        except (InvalidUnwrap, ValueError):
            raise _fail("aeskw: integrity check failed") from None
    aead = AESGCM(secret) if "GCM" in algorithm else ChaCha20Poly1305(secret)
    if len(nonce) != 12:
        raise _fail("invalid nonce")
    if len(tag) != 16:
        raise _fail("invalid tag")
    try:
        return aead.decrypt(nonce, ciphertext + tag, associated_data or None)
    except InvalidTag:
        raise _fail("cipher: message authentication failed") from None


def _cbc_hmac_tag(algorithm: str, mac_key: bytes, nonce: bytes, ciphertext: bytes,
                  associated_data: bytes) -> bytes:
    mac = hmac.HMAC(mac_key, _hash(algorithm))
    for part in (associated_data, nonce, ciphertext,
                 (len(associated_data) * 8).to_bytes(8, "big")):
        mac.update(part)
    return mac.finalize()[:len(mac_key)]


def _seal_cbc_hmac(plaintext: bytes, algorithm: str, secret: bytes, nonce: bytes,
                   associated_data: bytes) -> tuple[bytes, bytes]:
    if len(nonce) != 16:
        raise _fail("invalid nonce")
    half = len(secret) // 2
    padder = padding.PKCS7(128).padder()
    padded = padder.update(plaintext) + padder.finalize()
    encryptor = Cipher(algorithms.AES(secret[half:]), modes.CBC(nonce)).encryptor()
    sealed = encryptor.update(padded) + encryptor.finalize()
    return sealed, _cbc_hmac_tag(algorithm, secret[:half], nonce, sealed, associated_data)


def _open_cbc_hmac(ciphertext: bytes, algorithm: str, secret: bytes, nonce: bytes, tag: bytes,
                   associated_data: bytes) -> bytes:
    half = len(secret) // 2
    if len(nonce) != 16:
        raise _fail("invalid nonce")
    if len(tag) != half:
        raise _fail("invalid tag")
    expected = _cbc_hmac_tag(algorithm, secret[:half], nonce, ciphertext, associated_data)
    if not constant_time.bytes_eq(tag, expected):
        raise _fail("message authentication failed")
    if not ciphertext or len(ciphertext) % 16:
        raise _fail("invalid ciphertext length")
    decryptor = Cipher(algorithms.AES(secret[half:]), modes.CBC(nonce)).decryptor()
    plain = decryptor.update(ciphertext) + decryptor.finalize()
    try:
        unpadder = padding.PKCS7(128).unpadder()
        return unpadder.update(plain) + unpadder.finalize()
    except ValueError:
        raise _fail("invalid padding") from None


def sign(digest: bytes, algorithm: str, key: Key) -> bytes:
    private = key.private
    if algorithm in ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512"):
        if not isinstance(private, rsa.RSAPrivateKey):
            raise _fail(MISMATCH)
        hashed = _hash(algorithm)
        if len(digest) != hashed.digest_size:
            raise _fail("crypto/rsa: input must be hashed with given hash")
        return private.sign(digest, _sig_padding(algorithm, hashed), utils.Prehashed(hashed))
    if algorithm in ("ES256", "ES384", "ES512"):
        if not isinstance(private, ec.EllipticCurvePrivateKey):
            raise _fail(MISMATCH)
        return private.sign(digest, ec.ECDSA(utils.Prehashed(_digest_of(digest))))
    if algorithm == "EdDSA":
        if not isinstance(private, ed25519.Ed25519PrivateKey):
            raise _fail(MISMATCH)
        return private.sign(digest)
    raise _fail(UNSUPPORTED)


def verify(digest: bytes, signature: bytes, algorithm: str, key: Key) -> bool:
    public = key.public
    try:
        if algorithm in ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512"):
            if not isinstance(public, rsa.RSAPublicKey):
                raise _fail(MISMATCH)
            hashed = _hash(algorithm)
            public.verify(signature, digest, _sig_padding(algorithm, hashed),
                          utils.Prehashed(hashed))
            return True
        if algorithm in ("ES256", "ES384", "ES512"):
            if not isinstance(public, ec.EllipticCurvePublicKey):
                raise _fail(MISMATCH)
            public.verify(signature, digest, ec.ECDSA(utils.Prehashed(_digest_of(digest))))
            return True
        if algorithm == "EdDSA":
            if not isinstance(public, ed25519.Ed25519PublicKey):
                raise _fail(MISMATCH)
            public.verify(signature, digest)
            return True
    except (InvalidSignature, ValueError):
        return False
    raise _fail(UNSUPPORTED)


def _sig_padding(algorithm: str, hashed: hashes.HashAlgorithm) -> asym_padding.AsymmetricPadding:
    if algorithm.startswith("PS"):
        # Go's rsa.SignPSS with nil options: the salt as long as the hash
        return asym_padding.PSS(asym_padding.MGF1(hashed), hashed.digest_size)
    return asym_padding.PKCS1v15()


def _digest_of(digest: bytes) -> hashes.HashAlgorithm:
    known = {32: hashes.SHA256(), 48: hashes.SHA384(), 64: hashes.SHA512()}
    found = known.get(len(digest))
    if found is None:
        raise _fail("invalid digest length")
    return found
