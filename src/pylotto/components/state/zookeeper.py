"""``zookeeper``: a state store in ZooKeeper znodes, as components-contrib's ``state.zookeeper``.

Metadata: ``servers`` (contrib's name) or ``zookeeperHosts`` (Layotto's), ``sessionTimeout``,
``timeout`` (see :mod:`pylotto.components._backends.zookeeper_client`), ``keyPrefixPath``
(contrib's: the znode the items live under; ``basePath`` is the same, default ``/pylotto``),
plus ``keyPrefix`` of every store. contrib's ``maxBufferSize`` and ``maxConnBufferSize`` are
accepted with no effect. ZooKeeper's own limit on a znode (``jute.maxbuffer``, by default just
under 1 MiB) bounds a value.

Each item is the znode ``<keyPrefixPath>/<key>`` holding the value's bytes unchanged. ``%``,
``/``, spaces, control and non-ASCII characters, and the names ``.``/``..`` are %-escaped (aiozk
cannot send non-ASCII paths); other keys are the znode names contrib uses.
Its etag is the znode's ``mzxid`` — the id of the transaction that last wrote it — which only
grows, so an etag is never reused (contrib hands out the znode version, which starts again at
0 when a key is deleted and written again). As contrib's store, a save to a missing key
creates it whatever etag it carries, and a delete of a missing key succeeds; an etag that is
not a number is INVALID_ARGUMENT (contrib then writes unconditionally, so a garbled etag
would silently lose the check); under last-write a save or delete ignores its etag (contrib's
"any version"). Every write — one item, a bulk save or delete, a
transaction — is one ZooKeeper multi-op: the znodes are read, the etag and first-write rules
are checked against what was read, and the writes carry the versions read, so the multi fails
as a whole if any item changed in between; it is then read and checked again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any
from urllib.parse import quote, unquote

from pydantic import Field

from pylotto.components._backends.zookeeper_client import ZookeeperClient, ZookeeperSettings
from pylotto.components.base import ComponentContext
from pylotto.components.state.base import (
    BatchStateStore,
    Concurrency,
    Consistency,
    Feature,
    GetResult,
    KeyListingStateStore,
    SetRequest,
    StateSettings,
    TransactionOp,
    check_write,
    parse_int_etag,
)
from pylotto.core.errors import Unavailable
from pylotto.core.types import Metadata

ATTEMPTS = 50
"""Times a write is read, checked and tried again when other writers keep changing its keys."""


class ZookeeperStateSettings(StateSettings, ZookeeperSettings):
    key_prefix_path: str | None = Field(None, alias="keyPrefixPath")
    max_buffer_size: int = Field(0, alias="maxBufferSize")
    max_conn_buffer_size: int = Field(0, alias="maxConnBufferSize")


_SAFE = "".join(chr(c) for c in range(0x21, 0x7f) if chr(c) not in "%/")


def znode(key: str) -> str:
    name = quote(key, safe=_SAFE)
    if name in (".", ".."):
        name = name.replace(".", "%2E")
    return "/" + name


class ZookeeperStateStore(BatchStateStore, KeyListingStateStore):
    Settings = ZookeeperStateSettings
    settings: ZookeeperStateSettings
    features = frozenset({Feature.ETAG, Feature.TRANSACTIONAL})

    def __init__(self, name: str, settings: ZookeeperStateSettings,
                 context: ComponentContext) -> None:
        super().__init__(name, settings, context)
        if settings.key_prefix_path:
            settings = settings.model_copy(
                update={"base_path": "/" + settings.key_prefix_path.strip("/")})
        self.client = ZookeeperClient(settings, f"state store {name}")
        self._exc: Any = None

    async def init(self) -> None:
        from aiozk import exc

        self._exc = exc
        base = self.client.settings.base_path
        # the chroot must exist before paths under it are used: create it unchrooted
        self.client.settings = self.client.settings.model_copy(update={"base_path": "/"})
        await self.client.open()
        try:
            await self.client.call(lambda zk: zk.ensure_path(base))
        finally:
            await self.client.close()
        self.client.settings = self.client.settings.model_copy(update={"base_path": base})
        await self.client.open()

    async def close(self) -> None:
        await self.client.close()

    async def ping(self) -> None:
        await self.client.ping()

    async def _read(self, key: str) -> tuple[bytes, Any] | None:
        async def read(zk: Any) -> tuple[bytes, Any]:
            data, stat = await zk.get(znode(key))
            return bytes(data or b""), stat

        try:
            return await self.client.call(read, passthrough=(self._exc.NoNode,))
        except self._exc.NoNode:
            return None

    async def get(self, key: str, consistency: Consistency, metadata: Metadata) -> GetResult | None:
        got = await self._read(key)
        if got is None:
            return None
        data, stat = got
        return GetResult(data, str(stat.last_modified_zxid))

    async def keys_with_prefix(self, prefix: str, limit: int) -> list[str]:
        async def children(zk: Any) -> list[str]:
            return list(await zk.get_children("/"))

        keys = [unquote(name) for name in await self.client.call(children)]
        return [key for key in keys if key.startswith(prefix)][:limit]

    async def apply(self, operations: Sequence[TransactionOp]) -> None:
        if not operations:
            return
        # contrib's newSetDataRequest / newDeleteRequest: last-write is "any version"
        operations = [replace(op, etag=None) if op.concurrency is Concurrency.LAST_WRITE
                      else op for op in operations]
        for op in operations:  # a malformed etag fails the batch before any I/O
            if op.etag is not None:
                parse_int_etag(op.etag, self.name)
        exc = self._exc
        races = (exc.BadVersion, exc.NodeExists, exc.NoNode, exc.RolledBack,
                 exc.TransactionFailed)
        for _ in range(ATTEMPTS):
            keys = list(dict.fromkeys(op.key for op in operations))
            # key -> (version or None when absent, mzxid or -1 once written in this batch)
            state: dict[str, tuple[int | None, int | None]] = {}
            for key in keys:
                got = await self._read(key)
                state[key] = (None, None) if got is None else (
                    got[1].version, got[1].last_modified_zxid)
            steps: list[tuple[str, str, bytes, int]] = []
            for op in operations:
                version, zxid = state[op.key]
                check_write(op, None if version is None else zxid if zxid is not None else -1,
                            self.name, missing_takes_etag=True)
                path = znode(op.key)
                if isinstance(op, SetRequest):
                    if version is None:
                        steps.append(("create", path, op.value, 0))
                        state[op.key] = (0, -1)
                    else:
                        steps.append(("set", path, op.value, version))
                        state[op.key] = (version + 1, -1)
                elif version is not None:
                    steps.append(("delete", path, b"", version))
                    state[op.key] = (None, None)
            if not steps:
                return

            async def commit(zk: Any, steps: list[tuple[str, str, bytes, int]] = steps) -> bool:
                txn = zk.begin_transaction()
                for kind, path, value, version in steps:
                    if kind == "create":
                        txn.create(path, value)
                    elif kind == "set":
                        txn.set_data(path, value, version)
                    else:
                        txn.delete(path, version)
                return bool(await txn.commit())

            try:
                if await self.client.call(commit, passthrough=races):
                    return
            except races:
                pass
        raise Unavailable(f"state store {self.name}: the keys kept changing during "
                          f"{ATTEMPTS} attempts; nothing was written")
