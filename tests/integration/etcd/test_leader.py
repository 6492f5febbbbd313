"""etcd without a leader (a member cut off from its quorum, an election under way) is
UNAVAILABLE, and served again once the cluster has a leader (issue 17). A three-member etcd
cluster of the test's own; two members are stopped (SIGSTOP) under the component's member, so
it loses its quorum and its leader, then let go (SIGCONT)."""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from pathlib import Path

import pytest

from pylotto.components._backends.etcd_client import ERRORS
from pylotto.components.base import Component, ComponentContext
from pylotto.components.state.base import Consistency, SetRequest
from pylotto.core.errors import Internal, Unavailable
from pylotto.core.metadata import decode
from pylotto.core.registry import resolve
from tests.support.etcd_cluster import EtcdCluster

pytestmark = pytest.mark.timeout(90)


async def test_no_leader_is_unavailable_then_served(cluster: EtcdCluster, tmp_path: Path) -> None:
    processes = cluster.processes
    cls = resolve("state", "etcd")
    settings = decode(cls.Settings, {"endpoints": cluster.endpoint(0), "timeout": "2s"},
                      component="state.etcd-cluster")
    store: Component = cls("etcd-cluster", settings, ComponentContext(
        app_id="app", data_dir=tmp_path, logger=logging.getLogger("test.etcd")))
    deadline = time.monotonic() + 20
    while True:  # the fresh cluster elects its first leader
        try:
            await store.init()
            await store.set(SetRequest("k", b"v"))
            break
        except Unavailable:
            await store.close()
            assert time.monotonic() < deadline, "the etcd cluster elected no leader in 20 s"
            await asyncio.sleep(0.2)
    try:
        for process in processes[1:]:
            process.send_signal(signal.SIGSTOP)
        await asyncio.sleep(1.5)  # three election timeouts: m0 knows it has no quorum
        with pytest.raises(Unavailable):
            await store.set(SetRequest("k", b"w"))
        with pytest.raises(Unavailable):
            await store.get("k", Consistency.STRONG, {})
        for process in processes[1:]:
            process.send_signal(signal.SIGCONT)
        deadline = time.monotonic() + 30
        while True:
            try:
                got = await store.get("k", Consistency.STRONG, {})
                break
            except Unavailable:
                assert time.monotonic() < deadline, "no leader 30 s after the members came back"
                await asyncio.sleep(0.2)
        assert got is not None and got.value in (b"v", b"w")  # the refused write may have landed
    finally:
        await store.close()


@pytest.mark.parametrize(("code", "details", "expected"), [
    ("UNAVAILABLE", "etcdserver: no leader", Unavailable),
    ("UNAVAILABLE", "etcdserver: leader changed", Unavailable),
    ("UNAVAILABLE", "etcdserver: request timed out", Unavailable),
    ("RESOURCE_EXHAUSTED", "etcdserver: too many requests", Unavailable),
    ("RESOURCE_EXHAUSTED", "grpc: received message larger than max", Internal),
    ("INVALID_ARGUMENT", "etcdserver: request is too large", Internal),
])
def test_the_error_table(code: str, details: str, expected: type[Exception]) -> None:
    """etcd's answers (rpctypes' status codes and texts) as the gRPC client raises them."""
    import grpc

    error = grpc.aio.AioRpcError(getattr(grpc.StatusCode, code), grpc.aio.Metadata(),
                                 grpc.aio.Metadata(), details)
    assert type(ERRORS.map(error, "state store s")) is expected
