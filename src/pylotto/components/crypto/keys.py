"""Key files as Dapr reads them (dapr/kit ``crypto.ParseKey``): a JSON Web Key (``.json``), a
PEM block (``.pem``: PKCS#1, PKCS#8, PKIX, SEC 1, a certificate's public key), else sniffed —
``{`` starts a JWK unless the file is 16, 24 or 32 bytes long, ``-----`` a PEM block, anything
else is a symmetric key: base64 (standard or URL alphabet, padding and a final newline
ignored) or, failing that, the raw bytes."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any, Literal

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from pylotto.core.errors import InvalidArgument

Kty = Literal["oct", "RSA", "EC", "OKP"]
PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey

_CURVES: dict[str, type[ec.EllipticCurve]] = {
    "P-256": ec.SECP256R1, "P-384": ec.SECP384R1, "P-521": ec.SECP521R1}


@dataclass(frozen=True)
class Key:
    kty: Kty
    secret: bytes = b""
    private: PrivateKey | None = None
    public: PublicKey | None = None
    alg: str = ""
    use: str = ""
    ops: tuple[str, ...] = ()

    def can(self, operation: str) -> bool:
        """``key_ops`` / ``use`` allow ``operation`` (none set: anything)."""
        if self.ops and operation not in self.ops:
            return False
        if self.use:
            if operation in ("encrypt", "decrypt", "wrapKey", "unwrapKey"):
                return self.use == "enc"
            if operation in ("sign", "verify"):
                return self.use == "sig"
        return True

    def allows(self, algorithm: str) -> bool:
        return not self.alg or self.alg == algorithm


class KeyParseError(InvalidArgument):
    pass


def parse_key(raw: bytes, content_type: str = "") -> Key:
    if not raw:
        raise KeyParseError("key is empty")
    if content_type == "application/json":
        return parse_jwk(raw)
    if content_type == "application/x-pem-file":
        return parse_pem(raw)
    if raw[:1] == b"{" and len(raw) not in (16, 24, 32):
        return parse_jwk(raw)
    if len(raw) > 10 and raw[:5] == b"-----":
        return parse_pem(raw)
    return Key("oct", secret=_symmetric(raw))


def _symmetric(raw: bytes) -> bytes:
    trimmed = raw.rstrip(b"\n=")
    for alphabet in (b"+/", b"-_"):
        try:
            return base64.b64decode(trimmed + b"=" * (-len(trimmed) % 4), altchars=alphabet,
                                    validate=True)
        except (binascii.Error, ValueError):
            continue
    return raw


def parse_pem(raw: bytes) -> Key:
    try:
        if b"PRIVATE KEY-----" in raw:
            private = serialization.load_pem_private_key(raw, password=None)
            if not isinstance(private, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
                              | ed25519.Ed25519PrivateKey):
                raise KeyParseError("invalid key type")
            return _asymmetric(private, private.public_key())
        public: object = (x509.load_pem_x509_certificate(raw).public_key()
                          if b"CERTIFICATE-----" in raw else serialization.load_pem_public_key(raw))
    except KeyParseError:
        raise
    except (ValueError, TypeError) as exc:
        raise KeyParseError(f"failed to parse PEM encoded key: {exc}") from None
    if not isinstance(public, rsa.RSAPublicKey | ec.EllipticCurvePublicKey
                      | ed25519.Ed25519PublicKey):
        raise KeyParseError("invalid key type")
    return _asymmetric(None, public)


def _asymmetric(private: PrivateKey | None, public: PublicKey) -> Key:
    kty: Kty = ("RSA" if isinstance(public, rsa.RSAPublicKey)
                else "EC" if isinstance(public, ec.EllipticCurvePublicKey) else "OKP")
    return Key(kty, private=private, public=public)


def _b64url(value: Any) -> bytes:
    if not isinstance(value, str):
        raise KeyParseError("failed to parse key: a JWK member is not a string")
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        raise KeyParseError("failed to parse key: invalid base64url member") from None


def _int(value: Any) -> int:
    return int.from_bytes(_b64url(value), "big")


def parse_jwk(raw: bytes) -> Key:
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise KeyParseError(f"failed to unmarshal JSON into key: {exc}") from None
    if not isinstance(body, dict):
        raise KeyParseError("failed to unmarshal JSON into key")
    meta = {"alg": str(body.get("alg", "")), "use": str(body.get("use", "")),
            "ops": tuple(str(op) for op in body.get("key_ops", ()) or ())}
    kty = body.get("kty")
    try:
        if kty == "oct":
            return Key("oct", secret=_b64url(body.get("k")), **meta)  # type: ignore[arg-type]
        if kty == "RSA":
            numbers = rsa.RSAPublicNumbers(_int(body.get("e")), _int(body.get("n")))
            if "d" in body:
                p, q, d = _int(body.get("p")), _int(body.get("q")), _int(body.get("d"))
                private = rsa.RSAPrivateNumbers(
                    p, q, d, rsa.rsa_crt_dmp1(d, p), rsa.rsa_crt_dmq1(d, q),
                    rsa.rsa_crt_iqmp(p, q), numbers).private_key()
                return Key("RSA", private=private, public=private.public_key(),
                           **meta)  # type: ignore[arg-type]
            return Key("RSA", public=numbers.public_key(), **meta)  # type: ignore[arg-type]
        if kty == "EC":
            curve = _CURVES.get(str(body.get("crv")))
            if curve is None:
                raise KeyParseError(f"failed to parse key: unsupported curve {body.get('crv')}")
            point = ec.EllipticCurvePublicNumbers(_int(body.get("x")), _int(body.get("y")),
                                                  curve())
            if "d" in body:
                ec_private = ec.EllipticCurvePrivateNumbers(_int(body.get("d")),
                                                            point).private_key()
                return Key("EC", private=ec_private, public=ec_private.public_key(),
                           **meta)  # type: ignore[arg-type]
            return Key("EC", public=point.public_key(), **meta)  # type: ignore[arg-type]
        if kty == "OKP":
            if body.get("crv") != "Ed25519":
                raise KeyParseError(f"failed to parse key: unsupported curve {body.get('crv')}")
            if "d" in body:
                ed_private = ed25519.Ed25519PrivateKey.from_private_bytes(_b64url(body["d"]))
                return Key("OKP", private=ed_private, public=ed_private.public_key(),
                           **meta)  # type: ignore[arg-type]
            return Key("OKP", public=ed25519.Ed25519PublicKey.from_public_bytes(
                _b64url(body.get("x"))), **meta)  # type: ignore[arg-type]
    except KeyParseError:
        raise
    except (ValueError, TypeError) as exc:
        raise KeyParseError(f"failed to parse key: {exc}") from None
    raise KeyParseError(f"invalid key type {kty!r}")


def public_pem(key: Key) -> str:
    assert key.public is not None
    return key.public.public_bytes(serialization.Encoding.PEM,
                                   serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def _b64(value: bytes) -> str:
    return base64.urlsafe_b64encode(value).rstrip(b"=").decode()


def _be(number: int, size: int = 0) -> bytes:
    return number.to_bytes(size or max(1, (number.bit_length() + 7) // 8), "big")


def public_jwk(key: Key) -> dict[str, str]:
    """The public key as a JWK, members in jwx's (alphabetical) order."""
    public = key.public
    out: dict[str, str] = {}
    if isinstance(public, rsa.RSAPublicKey):
        numbers = public.public_numbers()
        out = {"e": _b64(_be(numbers.e)), "kty": "RSA", "n": _b64(_be(numbers.n))}
    elif isinstance(public, ec.EllipticCurvePublicKey):
        numbers_ec = public.public_numbers()
        size = (public.curve.key_size + 7) // 8
        crv = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}[
            public.curve.name]
        out = {"crv": crv, "kty": "EC", "x": _b64(_be(numbers_ec.x, size)),
               "y": _b64(_be(numbers_ec.y, size))}
    elif isinstance(public, ed25519.Ed25519PublicKey):
        out = {"crv": "Ed25519", "kty": "OKP", "x": _b64(public.public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw))}
    if key.alg:
        out["alg"] = key.alg
    if key.use:
        out["use"] = key.use
    return dict(sorted(out.items()))
