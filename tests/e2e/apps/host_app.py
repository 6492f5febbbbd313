"""The app of one host of tests/e2e/test_several_hosts.py, run inside that host's network
namespace (standard library only): ``python host_app.py <port> <app id>``.

- An HTTP server on ``127.0.0.1:<port>`` answering every GET with JSON ``{"app": <app id>,
  "caller": <dapr-caller-app-id>, "path": <path>}`` (what its sidecar hands it).
- A driver on stdin/stdout, so that the test (outside the namespace) can make calls from inside
  it: each line read is ``GET <url>`` (optionally ``GET <url> <dapr-api-token>``); each line
  written is ``{"status": <code>, "body": <text>}`` (status 0 and the error when nothing
  answered).
"""

from __future__ import annotations

import json
import sys
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def serve(port: int, app_id: str) -> None:
    class Who(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps({"app": app_id, "path": self.path,
                               "caller": self.headers.get("dapr-caller-app-id", "")}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Who)
    threading.Thread(target=server.serve_forever, daemon=True).start()


def get(url: str, token: str) -> dict[str, object]:
    request = urllib.request.Request(url, headers={"dapr-api-token": token} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return {"status": resp.status, "body": resp.read().decode(errors="replace")}
    except urllib.error.HTTPError as err:
        return {"status": err.code, "body": err.read().decode(errors="replace")}
    except OSError as err:
        return {"status": 0, "body": str(err)}


def main() -> None:
    serve(int(sys.argv[1]), sys.argv[2])
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        verb, url, *token = line.split()
        if verb != "GET":
            print(json.dumps({"status": 0, "body": f"unknown verb {verb}"}), flush=True)
            continue
        print(json.dumps(get(url, token[0] if token else "")), flush=True)


if __name__ == "__main__":
    main()
