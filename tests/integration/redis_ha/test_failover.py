"""A master SIGKILLed under load, on a Sentinel set and on a Cluster: writers keep writing
through the components (state saves, sequencer ids, pub/sub publishes, with
``waitReplicas: 1``); the sentinels (or the cluster) promote a replica and the components
follow it. Asserted: no acknowledged write is lost, ids are never handed out twice, errors
happen only between the kill and the recovery, and the recovery comes within the failover's
expected time. The figures are printed (``-s``) and kept in docs/redis-ha.md."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from redis.crc import key_slot

from pylotto.components.state.base import SetRequest
from pylotto.core.errors import PylottoError
from tests.integration.redis_ha.conftest import Build, eventually
from tests.support.inbox import Inbox
from tests.support.redis_ha import (
    MASTER_NAME,
    Cluster,
    SentinelSet,
    start_cluster,
    start_sentinel_set,
)

WRITERS = 4
"""Concurrent writers per component."""
BEFORE_KILL = 1.0
"""Seconds of load before the master is killed."""
AFTER_RECOVERY = 1.0
"""Seconds of load after every writer succeeded again."""
RECOVERY_LIMIT = 15.0
"""The failover must be followed within this (detection 1 s + election + promotion)."""


@dataclass
class Load:
    """What the writers of one component saw."""

    name: str
    acked: list[object] = field(default_factory=list)
    errors: list[tuple[float, str]] = field(default_factory=list)
    """(when the failed call began, why)"""
    failed_before: list[str] = field(default_factory=list)
    """Calls that failed (returned) before the master was killed."""
    successes: list[float] = field(default_factory=list)

    def recovered_at(self, killed: float) -> float | None:
        after = [t for t in self.successes if t > killed]
        return min(after) if after else None


@pytest.fixture
async def sentinels() -> AsyncIterator[SentinelSet]:
    """A Sentinel set of this test's own (it loses its master)."""
    started = await asyncio.to_thread(start_sentinel_set)
    yield started
    await asyncio.to_thread(started.stop)


@pytest.fixture
async def replicated_cluster() -> AsyncIterator[Cluster]:
    """Three masters with two replicas each (node timeout 1 s), of this test's own: after a
    failover the promoted replica still has one (``waitReplicas: 1`` writes need one; with a
    single replica per master they would fail until the killed node came back)."""
    started = await asyncio.to_thread(start_cluster, 3, 2, 1000)
    yield started
    await asyncio.to_thread(started.stop)


async def run_writers(load: Load, write: Callable[[int], Awaitable[object]],
                      stop: asyncio.Event, killed: asyncio.Event) -> None:
    counter = iter(range(10**9))

    async def writer() -> None:
        while not stop.is_set():
            n = next(counter)
            began = time.monotonic()
            try:
                acked = await write(n)
            except PylottoError as exc:
                load.errors.append((began, exc.message))
                if not killed.is_set():
                    load.failed_before.append(exc.message)
                await asyncio.sleep(0.05)
                continue
            load.acked.append(acked)
            load.successes.append(began)  # when a call that succeeded began

    await asyncio.gather(*(writer() for _ in range(WRITERS)))


Target = tuple[str, Callable[[], int], Callable[[], int | None]]
"""The key prefix, a function killing the master of its keys (returning its port) and one
naming the master now (None: none)."""


async def failover_under_load(build: Build, metadata: dict[str, str],
                              target: Callable[[Any], Target]) -> None:
    """Load, kill the master of the keys of ``target(broker)``, load until every writer
    succeeded again, then check and print what the writers saw."""
    metadata = {**metadata, "waitReplicas": "1", "timeout": "2s"}
    inbox = Inbox()
    async with build("state", metadata) as store, build("sequencer", metadata) as ids, \
            build("pubsub", {**metadata, "consumerID": "g"}) as broker:
        prefix, kill, master = target(broker)
        topic = f"{prefix}-events"
        subscription = await broker.subscribe(topic, inbox, {})

        async def save(n: int) -> object:
            key, value = f"{prefix}||k{n}", f"v{n}".encode()
            await store.set(SetRequest(key, value))
            return (key, value)

        async def next_id(_: int) -> object:
            return await ids.next_id(f"{prefix}||ids", {})

        async def publish(n: int) -> object:
            await broker.publish(topic, f"m{n}".encode(), {})
            return f"m{n}".encode()

        loads = {"state": Load("state saves"), "sequencer": Load("sequencer ids"),
                 "pubsub": Load("pub/sub publishes")}
        stop, dead = asyncio.Event(), asyncio.Event()
        writers = [asyncio.create_task(run_writers(loads[name], work, stop, dead))
                   for name, work in (("state", save), ("sequencer", next_id),
                                      ("pubsub", publish))]
        await asyncio.sleep(BEFORE_KILL)
        dead.set()  # from here on a call may fail (the kill is under way)
        old_master = await asyncio.to_thread(kill)
        killed = time.monotonic()  # the master is dead: every call from now needs the new one
        await eventually(lambda: all(load.recovered_at(killed) is not None
                                     for load in loads.values()),
                         RECOVERY_LIMIT, "every writer succeeds again")
        await asyncio.sleep(AFTER_RECOVERY)
        stop.set()
        await asyncio.gather(*writers)
        new_master = await asyncio.to_thread(master)
        assert new_master is not None and new_master != old_master

        # every acknowledged save is on the new master
        pairs = [pair for pair in loads["state"].acked if isinstance(pair, tuple)]
        items = await store.bulk_get([k for k, _ in pairs], {})
        lost_saves = sum(1 for (_, value), item in zip(pairs, items, strict=True)
                         if item.value != value)
        # ids: never twice, and the counter is past every acknowledged one
        handed = [i for i in loads["sequencer"].acked if isinstance(i, int)]
        after = await ids.next_id(f"{prefix}||ids", {})
        lost_ids = sum(1 for i in handed if i >= after)
        # every acknowledged message reaches the subscriber
        published = set(loads["pubsub"].acked)
        await eventually(lambda: published <= {m.data for m in inbox.messages}, 10,
                         "every acknowledged message delivered")
        await subscription.close()

        print(f"\nfailover of master 127.0.0.1:{old_master} -> 127.0.0.1:{new_master}")
        for load in loads.values():
            recovered = load.recovered_at(killed)
            assert recovered is not None
            late = [t for t, _ in load.errors if t > recovered]
            window = (f" from {min(t for t, _ in load.errors) - killed:+.2f} s to "
                      f"{max(t for t, _ in load.errors) - killed:+.2f} s" if load.errors else "")
            print(f"  {load.name}: {len(load.acked)} acknowledged, {len(load.errors)} failed "
                  f"calls{window}, recovered {recovered - killed:.2f} s after the kill; "
                  f"kinds: {sorted({m.split(':')[-1].strip()[:60] for _, m in load.errors})}")
            assert not load.failed_before, f"{load.name}: errors before the kill: " \
                                           f"{load.failed_before}"
            assert not late, f"{load.name}: errors after the recovery: {load.errors}"
            assert recovered - killed < RECOVERY_LIMIT
        print(f"  lost: {lost_saves} saves, {lost_ids} ids, "
              f"{len(published - {m.data for m in inbox.messages})} messages")
        assert lost_saves == 0
        assert len(handed) == len(set(handed)), "an id was handed out twice"
        assert lost_ids == 0


async def test_a_killed_sentinel_master_loses_no_acknowledged_write(
        build: Build, sentinels: SentinelSet) -> None:
    def kill() -> int:
        port = sentinels.master
        sentinels.kill(port)
        return port

    def master() -> int | None:
        port = sentinels.master_port()
        return port if port in sentinels.replicas else None

    await failover_under_load(build, {"redisHost": sentinels.redis_host, "failover": "true",
                                      "sentinelMasterName": MASTER_NAME},
                              lambda _: (f"fo{uuid.uuid4().hex[:8]}", kill, master))


async def test_a_killed_cluster_master_loses_no_acknowledged_write(
        build: Build, replicated_cluster: Cluster) -> None:
    def target(broker: Any) -> Target:
        # the writes' slot on the master redis-py's pub/sub client asks about commands (its
        # default node): the case where a client with retries off could hang for good
        asked = broker.client.redis.get_default_node().port
        base = uuid.uuid4().hex[:8]
        tag = next(f"fo{base}{i}" for i in range(100_000)
                   if replicated_cluster.master_of(key_slot(f"fo{base}{i}".encode())) == asked)
        slot = key_slot(tag.encode())

        def kill() -> int:
            port = replicated_cluster.master_of(slot)
            assert port is not None
            replicated_cluster.kill(port)
            return port

        # every key and the topic in one slot: {tag}
        return f"{{{tag}}}", kill, lambda: replicated_cluster.master_of(slot)

    await failover_under_load(build, {"redisHost": replicated_cluster.redis_host,
                                      "redisType": "cluster"}, target)
