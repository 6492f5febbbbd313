"""The guest ABI: what a module exports and what the host lends it (see docs/wasm.md).

Guest exports
    ``memory``                      its linear memory
    ``alloc(len: i32) -> i32``      room for ``len`` bytes the host will write
    ``handle(ptr: i32, len: i32) -> i64``   the request body is at ``ptr``; the reply is
                                    returned packed as ``(reply_ptr << 32) | reply_len``

Host imports, module ``pylotto`` (strings are UTF-8 ``ptr, len`` pairs):
    ``log(level, ptr, len)``
    ``method() -> i64``                                          packed method name
    ``set_content_type(ptr, len)``
    ``state_get(store, store_len, key, key_len) -> i64``         packed value (0: missing)
    ``state_set(store, store_len, key, key_len, value, value_len)``
    ``publish(pubsub, pubsub_len, topic, topic_len, data, data_len)``
    ``invoke(app, app_len, method, method_len, data, data_len) -> i64``   packed reply

Plus ``env.abort(msg, file, line, column)`` for AssemblyScript modules.
"""

from __future__ import annotations

IMPORT_MODULE = "pylotto"
EXPORT_MEMORY = "memory"
EXPORT_ALLOC = "alloc"
EXPORT_HANDLE = "handle"

LOG_LEVELS = {0: "DEBUG", 1: "INFO", 2: "WARNING", 3: "ERROR"}
"""``log`` levels; any other number logs at INFO."""

_MASK32 = 0xFFFF_FFFF


def pack(ptr: int, length: int) -> int:
    """``(ptr << 32) | length`` as the signed i64 wasm sees."""
    value = ((ptr & _MASK32) << 32) | (length & _MASK32)
    return value - (1 << 64) if value >= 1 << 63 else value


def unpack(value: int) -> tuple[int, int]:
    """(ptr, length) from a packed i64 (signed or not)."""
    value &= (1 << 64) - 1
    return value >> 32, value & _MASK32
