"""A Dapr HTTP app for the loss test: subscribes to one topic and appends the number of every
event it receives to a file (one line per delivery, so duplicates show).

Usage: python loss_app.py PORT OUTPUT_FILE PUBSUB TOPIC
"""

from __future__ import annotations

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT, OUTPUT, PUBSUB, TOPIC = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
LOCK = threading.Lock()
SINK = open(OUTPUT, "a", buffering=1)  # noqa: SIM115 - open for the app's lifetime


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self._reply(200, [{"pubsubname": PUBSUB, "topic": TOPIC, "route": "/loss"}])

    def do_POST(self) -> None:
        event = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with LOCK:
            SINK.write(f"{event['data']['n']}\n")
        self._reply(200, {"status": "SUCCESS"})

    def _reply(self, status: int, body: object) -> None:
        raw = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, *args: object) -> None:
        pass


ThreadingHTTPServer.allow_reuse_address = True
ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
