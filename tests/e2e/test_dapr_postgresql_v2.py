"""A Dapr component ``state.postgresql`` with ``version: v2`` served by ``pylotto run`` as
daprd serves it (components-contrib state/postgresql/v2): the plain dapr SDK saves and reads
through it, etags are UUIDs, a stale or non-UUID etag is daprd's 409 / ``ABORTED``, and the row
is in contrib's table."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import asyncpg
import pytest

from tests.e2e.sidecar import Sidecar
from tests.integration.postgresql.conftest import DSN, drop
from tests.support.servers import require

MANIFEST = """\
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {{name: statestore}}
spec:
  type: state.postgresql
  version: v2
  metadata:
  - name: connectionString
    value: {dsn}
  - name: tablePrefix
    value: {prefix}_
  - name: metadataTableName
    value: {prefix}_dapr_metadata
  - name: keyPrefix
    value: appid
"""


async def _row(prefix: str, key: str) -> tuple[bytes, str]:
    conn = await asyncpg.connect(DSN)
    try:
        row = await conn.fetchrow(f'SELECT value, etag FROM "{prefix}_state" WHERE key = $1', key)
        keys = [r["key"] for r in await conn.fetch(f'SELECT key FROM "{prefix}_state"')]
    finally:
        await conn.close()
    assert row is not None, keys
    return bytes(row["value"]), str(row["etag"])


def test_a_v2_manifest_is_served_with_contribs_layout_and_uuid_etags(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    require("postgresql")
    prefix = f"pge{uuid.uuid4().hex[:8]}"
    resources = tmp_path / "components"
    resources.mkdir()
    (resources / "state.yaml").write_text(MANIFEST.format(dsn=DSN, prefix=prefix))
    car = Sidecar(tmp_path / "car", components={}, app={"app_id": "orders"},
                  extra_args=["--resources-path", str(resources)])
    car.start()
    try:
        monkeypatch.setenv("DAPR_GRPC_PORT", str(car.dapr_grpc_port))
        monkeypatch.setenv("DAPR_HTTP_PORT", str(car.dapr_http_port))
        monkeypatch.setenv("DAPR_HEALTH_TIMEOUT", "10")
        from dapr.clients import DaprClient
        from dapr.clients.exceptions import DaprGrpcError

        with DaprClient() as client:
            client.save_state("statestore", "order-1", "first")
            got = client.get_state("statestore", "order-1")
            assert got.data == b"first" and str(uuid.UUID(got.etag)) == got.etag
            client.save_state("statestore", "order-1", "second", etag=got.etag)
            with pytest.raises(DaprGrpcError) as stale:  # the etag it replaced
                client.save_state("statestore", "order-1", "third", etag=got.etag)
            assert stale.value.code().name == "ABORTED"
            with pytest.raises(DaprGrpcError) as numeric:  # no UUID: contrib's mismatch
                client.delete_state("statestore", "order-1", etag="1")
            assert numeric.value.code().name == "ABORTED"
            now = client.get_state("statestore", "order-1")
        key = "orders||order-1"
        assert asyncio.run(_row(prefix, key)) == (b"second", now.etag)

        request = urllib.request.Request(
            f"{car.dapr_http_url}/v1.0/state/statestore", method="POST",
            data=json.dumps([{"key": "order-1", "value": "x",
                              "etag": "not-a-uuid"}]).encode(),
            headers={"Content-Type": "application/json"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=10)
        assert refused.value.code == 409
        assert json.loads(refused.value.read())["errorCode"] == "ERR_STATE_SAVE"
        with urllib.request.urlopen(f"{car.dapr_http_url}/v1.0/metadata", timeout=10) as resp:
            (component,) = [c for c in json.load(resp)["components"] if c["name"] == "statestore"]
        assert (component["type"], component["version"]) == ("state.postgresql", "v2")
        assert "QUERY_API" not in component["capabilities"]  # contrib's v2 has no query API
    finally:
        car.stop()
        asyncio.run(drop(prefix))
