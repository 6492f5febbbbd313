"""Layotto's TLS keys (``tlsCa``, ``tlsCert``, ``tlsCertKey``) against an etcd member that
serves TLS only and wants a client certificate signed by its CA."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import pytest

from pylotto.components.base import ComponentContext
from pylotto.components.state.base import Consistency, SetRequest
from pylotto.core.errors import Unavailable
from pylotto.core.metadata import decode
from pylotto.core.registry import resolve
from pylotto.security.certs import make_app_cert, make_ca
from tests.support.etcd_cluster import etcd_cluster

pytestmark = pytest.mark.timeout(60)


def _store(metadata: dict[str, str], tmp_path: Path) -> object:
    cls = resolve("state", "etcd")
    settings = decode(cls.Settings, {"timeout": "2s", **metadata}, component="state.etcd-tls")
    return cls("etcd-tls", settings, ComponentContext(
        app_id="app", data_dir=tmp_path, logger=logging.getLogger("test.etcd-tls")))


async def test_client_certificate_and_ca_files(tmp_path: Path) -> None:
    ca, _ = make_ca(tmp_path / "ca")
    server_cert, server_key = make_app_cert("etcd-member", tmp_path / "ca", tmp_path / "pki")
    client_cert, client_key = make_app_cert("pylotto", tmp_path / "ca", tmp_path / "pki")
    with etcd_cluster(size=1, tls=(server_cert, server_key, ca)) as member:
        endpoint = member.endpoint(0)
        store: object = _store({"endpoints": endpoint, "tlsCa": str(ca),
                                "tlsCert": str(client_cert), "tlsCertKey": str(client_key)},
                               tmp_path)
        deadline = time.monotonic() + 20
        while True:  # the member elects itself
            try:
                await store.init()  # type: ignore[attr-defined]
                break
            except Unavailable:
                await store.close()  # type: ignore[attr-defined]
                assert time.monotonic() < deadline, "the TLS member did not serve in 20 s"
                await asyncio.sleep(0.2)
        try:
            await store.set(SetRequest("k", b"secret"))  # type: ignore[attr-defined]
            got = await store.get("k", Consistency.STRONG, {})  # type: ignore[attr-defined]
            assert got is not None and got.value == b"secret"
        finally:
            await store.close()  # type: ignore[attr-defined]
        for refused in ({"endpoints": endpoint},  # plain TCP to a TLS port
                        {"endpoints": f"https://{endpoint}", "tlsCa": str(ca)}):  # no cert
            other: object = _store(refused, tmp_path)
            with pytest.raises(Unavailable):
                await other.init()  # type: ignore[attr-defined]
            await other.close()  # type: ignore[attr-defined]
