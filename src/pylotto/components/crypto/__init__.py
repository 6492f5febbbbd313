"""crypto components: keys for Dapr's crypto API and Layotto's CryptionService (docs/crypto.md)."""

ALIASES: dict[str, str] = {
    "dapr.localstorage": "pylotto.components.crypto.localstorage:LocalStorageCrypto",
}
"""``crypto.dapr.localstorage`` in a Dapr manifest: key files in a folder."""
