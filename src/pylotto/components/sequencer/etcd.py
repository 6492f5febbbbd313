"""``etcd``: counters on etcd, shared by every sidecar using the same cluster.

Metadata: ``endpoints``, ``username``, ``password``, ``keyPrefixPath`` (default ``pylotto``),
``timeout`` (see :mod:`pylotto.components._backends.etcd_client`), ``segmentSize`` (ids reserved per
WEAK refill, default 1000), plus ``keyPrefix`` and ``biggerThan``.

Each key ``<keyPrefixPath>/<key>`` holds the last id handed out, in decimal. Moving it is a
compare-and-swap transaction on the key's ``mod_revision`` (0 when absent), retried when
another sidecar moved it first (:mod:`.cas`): concurrent callers get disjoint ids, and a move is
committed by etcd's Raft log before the ids leave the component.
"""

from __future__ import annotations

from collections.abc import Callable

from pylotto.components._backends.etcd_client import EtcdClient, EtcdSettings
from pylotto.components.base import ClientComponent, ComponentContext
from pylotto.components.sequencer.base import SegmentSettings
from pylotto.components.sequencer.cas import CasSequencer


class EtcdSequencerSettings(SegmentSettings, EtcdSettings):
    pass


class EtcdSequencer(ClientComponent[EtcdClient], CasSequencer):
    Settings = EtcdSequencerSettings
    settings: EtcdSequencerSettings

    def __init__(self, name: str, settings: EtcdSequencerSettings,
                 context: ComponentContext) -> None:
        super().__init__(name, settings, context)
        self.client = EtcdClient(settings, f"sequencer store {name}")

    async def swap(self, key: str, to: Callable[[int], int]) -> int | None:
        client = self.client
        name = client.key(key)
        reply = await client.range(name)
        current, revision = (int(reply.kvs[0].value), reply.kvs[0].mod_revision) \
            if reply.kvs else (0, 0)
        wanted = to(current)
        if wanted == current:
            return current
        swapped = await client.txn([client.compare(name, "MOD", revision)],
                                   [client.put(name, str(wanted).encode())])
        return wanted if swapped.succeeded else None
