"""etcd authentication (``username``/``password``) on a cluster with auth enabled (etcdctl,
from Debian's etcd-client package): each member is asked for a token; a token etcd no longer
takes (simple tokens expire after ``--auth-token-ttl`` idle seconds) is renewed without the
call failing; a wrong password fails ``init`` naming etcd's reason."""

from __future__ import annotations

import asyncio
import logging
import shutil
import subprocess
from pathlib import Path

import pytest

from pylotto.components.base import ComponentContext
from pylotto.components.state.base import Consistency, SetRequest
from pylotto.core.errors import Internal
from pylotto.core.metadata import decode
from pylotto.core.registry import resolve
from tests.support.etcd_cluster import etcd_cluster

pytestmark = pytest.mark.timeout(60)

TOKEN_TTL = 1
"""Seconds an unused simple token lives (etcd's ``--auth-token-ttl``)."""


def _etcdctl(endpoints: str, *args: str) -> None:
    etcdctl = shutil.which("etcdctl")
    assert etcdctl, "etcdctl is not installed (scripts/start-services.sh installs etcd-client)"
    subprocess.run([etcdctl, "--endpoints", endpoints, *args], check=True,
                   capture_output=True, env={"ETCDCTL_API": "3"}, timeout=20)


def _store(endpoints: str, tmp_path: Path, **credentials: str) -> object:
    cls = resolve("state", "etcd")
    settings = decode(cls.Settings, {"endpoints": endpoints, "timeout": "3s", **credentials},
                      component="state.etcd-auth")
    return cls("etcd-auth", settings, ComponentContext(
        app_id="app", data_dir=tmp_path, logger=logging.getLogger("test.etcd-auth")))


async def test_tokens_per_member_renewed_when_expired(tmp_path: Path) -> None:
    with etcd_cluster(extra=["--auth-token-ttl", str(TOKEN_TTL)]) as cluster:
        endpoints = cluster.endpoints()
        await cluster.leader()
        _etcdctl(endpoints, "user", "add", "root:s3cret")
        _etcdctl(endpoints, "auth", "enable")
        store: object = _store(endpoints, tmp_path, username="root", password="s3cret")
        await store.init()  # type: ignore[attr-defined]
        try:
            await store.set(SetRequest("k", b"v"))  # type: ignore[attr-defined]
            first = store.client.members.current  # type: ignore[attr-defined]
            token = first.token
            await asyncio.sleep(TOKEN_TTL + 1.5)  # the token expires unused
            got = await store.get("k", Consistency.STRONG, {})  # type: ignore[attr-defined]
            assert got is not None and got.value == b"v"
            assert first.token and first.token != token  # renewed
            cluster.kill(cluster.endpoints().split(",").index(first.endpoint))
            # a read fails over at once (a write in flight might not: its outcome is unknown)
            got = await store.get("k", Consistency.STRONG, {})  # type: ignore[attr-defined]
            assert got is not None and got.value == b"v"
            moved = store.client.members.current  # type: ignore[attr-defined]
            assert moved is not first and moved.token
        finally:
            await store.close()  # type: ignore[attr-defined]
        wrong: object = _store(endpoints, tmp_path, username="root", password="nope")
        with pytest.raises(Internal, match="authentication failed"):
            await wrong.init()  # type: ignore[attr-defined]
        await wrong.close()  # type: ignore[attr-defined]
        anonymous: object = _store(endpoints, tmp_path)
        with pytest.raises(Internal, match="user name is empty"):
            await anonymous.init()  # type: ignore[attr-defined]
        await anonymous.close()  # type: ignore[attr-defined]
