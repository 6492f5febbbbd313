"""A gRPC Dapr app written with the Dapr SDK's ``dapr.ext.grpc.App`` (as Dapr's gRPC examples
are): method ``orders`` (echo), ``slow`` (0.3 s, recording the most calls seen at once),
``hold`` (answers once ``STATE_DIR/release`` exists; ``STATE_DIR/holding`` counts the calls
waiting), and a health check failing while ``STATE_DIR/sick`` exists. With ``APP_TLS_CERT`` /
``APP_TLS_KEY`` it serves gRPC over TLS (``--app-protocol grpcs``)."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

from dapr.clients.grpc._request import InvokeMethodRequest
from dapr.ext.grpc import App

STATE = Path(os.environ["STATE_DIR"])
STATE.mkdir(parents=True, exist_ok=True)
app = App()
_lock = threading.Lock()
_running = {"now": 0, "max": 0}


def health() -> None:
    if (STATE / "sick").exists():
        raise RuntimeError("sick")


@app.method("orders")
def orders(request: InvokeMethodRequest) -> str:
    return json.dumps({"app": os.environ.get("APP_ID"), "got": request.text()})


@app.method("slow")
def slow(request: InvokeMethodRequest) -> str:
    with _lock:
        _running["now"] += 1
        _running["max"] = max(_running["max"], _running["now"])
    time.sleep(0.3)
    with _lock:
        _running["now"] -= 1
        (STATE / "concurrency.json").write_text(json.dumps(_running))
    return "{}"


@app.method("hold")
def hold(request: InvokeMethodRequest) -> str:
    with _lock:
        _running["holding"] = _running.get("holding", 0) + 1
        (STATE / "holding").write_text(str(_running["holding"]))
    while not (STATE / "release").exists():
        time.sleep(0.05)
    return "{}"


app.register_health_check(health)
(STATE / "env.json").write_text(json.dumps({"APP_ID": os.environ.get("APP_ID"),
                                            "APP_PROTOCOL": os.environ.get("APP_PROTOCOL")}))
print("APP-READY", flush=True)
if cert := os.environ.get("APP_TLS_CERT"):  # --app-protocol grpcs: serve gRPC over TLS
    import grpc

    server = app._server  # the SDK's App serves plaintext only
    server.add_secure_port(f"127.0.0.1:{os.environ['APP_PORT']}", grpc.ssl_server_credentials(
        [(Path(os.environ["APP_TLS_KEY"]).read_bytes(), Path(cert).read_bytes())]))
    server.start()
    server.wait_for_termination()
else:
    app.run(int(os.environ["APP_PORT"]), "127.0.0.1")
