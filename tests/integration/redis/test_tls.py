"""``enableTLS``: a Redis server speaking only TLS, started by the test with a certificate of
its own CA. Both clients — the pipelined one (state, lock, sequencer) and redis-py's pool
(configuration, pub/sub) — check the server's certificate against the trusted CAs
(``SSL_CERT_FILE`` here) and its address, and refuse an untrusted one."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pylotto.components.configuration.base import ConfigurationItem, ItemsQuery
from pylotto.components.state.base import Consistency, SetRequest
from pylotto.core.errors import Unavailable
from pylotto.security.certs import make_app_cert, make_ca
from tests.integration.redis.conftest import Builder, KeyMaker
from tests.support.ports import free_port


@pytest.fixture(scope="module")
def tls_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path]]:
    """(port, CA certificate) of a redis-server that accepts TLS connections only."""
    server = shutil.which("redis-server")
    assert server, "redis-server is not installed (scripts/start-services.sh installs it)"
    folder = tmp_path_factory.mktemp("tls-redis")
    make_ca(folder / "ca")
    cert, key = make_app_cert("redis", folder / "ca", folder / "server")
    port = free_port()
    process = subprocess.Popen(
        [server, "--port", "0", "--tls-port", str(port), "--tls-cert-file", str(cert),
         "--tls-key-file", str(key), "--tls-ca-cert-file", str(folder / "ca" / "ca.crt"),
         "--tls-auth-clients", "no", "--save", "", "--appendonly", "no",
         "--dir", str(folder)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            assert process.poll() is None, "redis-server with TLS did not start"
            assert time.monotonic() < deadline, "redis-server with TLS not listening after 10 s"
            time.sleep(0.05)
    yield port, folder / "ca" / "ca.crt"
    process.terminate()
    process.wait(10)


def tls(port: int) -> dict[str, str]:
    return {"redisHost": f"127.0.0.1:{port}", "enableTLS": "true", "timeout": "2s"}


async def test_both_clients_work_over_tls_with_a_trusted_ca(
    build: Builder, key: KeyMaker, tls_redis: tuple[int, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    port, ca = tls_redis
    monkeypatch.setenv("SSL_CERT_FILE", str(ca))
    async with build("state", tls(port)) as store, build("configuration", tls(port)) as config:
        await store.set(SetRequest(key("k"), b"over tls"))
        got = await store.get(key("k"), Consistency.UNSPECIFIED, {})
        assert got is not None and got.value == b"over tls"
        query = ItemsQuery(key("app"), "default", "default")
        await config.set(query.app_id, [ConfigurationItem("k", "v", "default", "default")], {})
        assert [item.content for item in await config.get(query)] == ["v"]


@pytest.mark.parametrize("capability", ["state", "configuration"])
async def test_an_untrusted_server_certificate_is_refused(
    build: Builder, tls_redis: tuple[int, Path], capability: str
) -> None:
    port, _ = tls_redis
    with pytest.raises(Unavailable, match=r"CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
        async with build(capability, tls(port)):
            pass
