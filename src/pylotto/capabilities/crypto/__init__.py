"""Cryptography on named key stores (docs/crypto.md): Dapr's stream encryption
(``dapr.io/enc/v1``, :mod:`.enc_v1`), its subtle-crypto verbs, and Layotto's CryptionService
(one ``dapr.io/enc/v1`` document per call, the key named in it)."""

from pylotto.capabilities.crypto.api import CryptoCapability, EncryptOptions

__all__ = ["CryptoCapability", "EncryptOptions"]
