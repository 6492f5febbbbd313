"""A Dapr app written as Dapr's quickstarts are (plain ``dapr`` SDK, ports from the environment
``dapr run`` sets), for the ``pylotto run`` drop-in tests (test_dapr_run.py).

Environment (besides what the launcher sets): ``STATE_DIR`` (where it writes ``env.json``,
``events.jsonl``, ``concurrency.json`` and reads ``sick``), ``PEER`` (an app id to invoke at start,
printing ``reply <answer>``), ``BIND_HOST``, ``APP_TLS_CERT`` / ``APP_TLS_KEY`` (serve HTTPS).

Routes: ``/healthz`` (503 while ``STATE_DIR/sick`` exists), ``/orders`` (echo), ``/slow`` (0.3 s,
recording the most calls seen at once), ``/dapr/subscribe`` (topic ``orders`` of ``in-memory``),
``/events`` (appends each event).
"""

from __future__ import annotations

import json
import os
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

STATE = Path(os.environ["STATE_DIR"])
STATE.mkdir(parents=True, exist_ok=True)
_lock = threading.Lock()
_running = {"now": 0, "max": 0}


class Handler(BaseHTTPRequestHandler):
    def _reply(self, status: int, body: object) -> None:
        out = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        path = self.path.split("?")[0]
        if path == "/healthz":
            self._reply(503 if (STATE / "sick").exists() else 200, {})
        elif path == "/dapr/subscribe":
            self._reply(200, [{"pubsubname": "in-memory", "topic": "orders",
                               "route": "/events"}])
        elif path == "/events":
            with _lock, (STATE / "events.jsonl").open("a") as out:
                out.write(body.decode() + "\n")
            self._reply(200, {"status": "SUCCESS"})
        elif path == "/slow":
            with _lock:
                _running["now"] += 1
                _running["max"] = max(_running["max"], _running["now"])
            time.sleep(0.3)
            with _lock:
                _running["now"] -= 1
                (STATE / "concurrency.json").write_text(json.dumps(_running))
            self._reply(200, {"ok": True})
        else:
            self._reply(200, {"app": os.environ.get("APP_ID"), "path": path,
                              "got": body.decode()})

    do_GET = do_POST = do_PUT = do_DELETE = _handle

    def log_message(self, *args: object) -> None:
        pass


def serve() -> None:
    port = int(os.environ["APP_PORT"])
    server = ThreadingHTTPServer((os.environ.get("BIND_HOST", "127.0.0.1"), port), Handler)
    if cert := os.environ.get("APP_TLS_CERT"):
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, os.environ["APP_TLS_KEY"])
        server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()


def invoke_peer(peer: str) -> None:
    from dapr.clients import DaprClient

    with DaprClient() as client:
        for _ in range(100):
            try:
                answer = client.invoke_method(peer, "orders", data=b'{"from": "me"}',
                                              http_verb="POST")
            except Exception as exc:  # the peer may not be up yet
                last = exc
                time.sleep(0.2)
                continue
            print("reply", answer.text(), flush=True)
            return
    print("invoke failed:", last, flush=True)
    sys.exit(4)


def main() -> None:
    names = ("APP_ID", "APP_PORT", "APP_PROTOCOL", "APP_CHANNEL_ADDRESS", "DAPR_HTTP_PORT",
             "DAPR_GRPC_PORT", "DAPR_METRICS_PORT")
    (STATE / "env.json").write_text(json.dumps({n: os.environ.get(n) for n in names}))
    if os.environ.get("APP_PORT"):
        serve()
    if peer := os.environ.get("PEER"):
        invoke_peer(peer)
    print("APP-READY", flush=True)
    if os.environ.get("EXIT_AFTER_PEER"):
        return
    while True:
        time.sleep(0.5)


if __name__ == "__main__":
    main()
