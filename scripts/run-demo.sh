#!/usr/bin/env bash
# Start `pylotto run` with the embedded default, show it answering through the SDK example,
# then keep the sidecar in the foreground until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
pylotto run &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null' EXIT INT TERM
readiness() {
  python - <<'PY'
import sys, urllib.request
try:
    with urllib.request.urlopen("http://127.0.0.1:34999/actuator/health/readiness", timeout=1) as r:
        print(r.read().decode()[:110] + "...")
except OSError:
    sys.exit(1)
PY
}
for _ in $(seq 1 100); do
  if status=$(readiness); then break; fi
  if ! kill -0 $pid 2>/dev/null; then echo "pylotto did not start" >&2; exit 1; fi
  sleep 0.1
done
echo "--- readiness: $status"
echo "--- examples/quickstart.py (the README's SDK example):"
python examples/quickstart.py
python - <<'PY'
import json, urllib.request
with urllib.request.urlopen("http://127.0.0.1:3500/v1.0/metadata", timeout=2) as r:
    status = json.load(r)["actorRuntime"]["runtimeStatus"]
print(f"--- Dapr actors and workflows: {status}, their state in the sqlite store "
      "(docs/actors.md, docs/workflows.md)")
PY
echo "--- dashboard: http://127.0.0.1:34999/dashboard"
echo "--- pylotto is serving the Layotto gRPC API on 127.0.0.1:34904, Dapr's gRPC on :50001 and HTTP on :3500; Ctrl-C stops it."
wait $pid
