"""A Dapr quickstart-style app (examples/dapr) runs unchanged beside pylotto, launched the way
`dapr run` launches it, with its Dapr component manifests (Redis state store)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.e2e.sidecar import free_port
from tests.support.servers import require

ROOT = Path(__file__).resolve().parents[2]


def test_order_processor_quickstart(tmp_path: Path) -> None:
    require("redis")
    result = subprocess.run(
        [sys.executable, "-m", "pylotto", "run", "--app-id", "order-processor",
         "--resources-path", str(ROOT / "examples/dapr/components"),
         "--dapr-http-port", str(free_port()), "--dapr-grpc-port", str(free_port()),
         "--grpc-address", f"127.0.0.1:{free_port()}",
         "--actuator-address", f"127.0.0.1:{free_port()}", "--data-dir", str(tmp_path),
         "--", sys.executable, str(ROOT / "examples/dapr/order_processor.py")],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "order-processor done" in result.stdout
    for order_id in (1, 2, 3):
        assert f'Result after get: {{"orderId": {order_id}}}' in result.stderr
        assert f"Deleted order: {order_id}" in result.stderr
    assert result.stderr.count("Subscriber received:") == 3
