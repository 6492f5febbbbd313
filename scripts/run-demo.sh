#!/usr/bin/env bash
# Start `pylotto run` with the embedded default, show it answering through the SDK example,
# then keep the sidecar in the foreground until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
pylotto run &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null' EXIT INT TERM
for _ in $(seq 1 100); do
  if curl -fs http://127.0.0.1:34999/actuator/health/readiness >/dev/null 2>&1; then break; fi
  if ! kill -0 $pid 2>/dev/null; then echo "pylotto did not start" >&2; exit 1; fi
  sleep 0.1
done
echo "--- readiness: $(curl -s http://127.0.0.1:34999/actuator/health/readiness | head -c 120)..."
echo "--- examples/quickstart.py (the README's SDK example):"
python examples/quickstart.py
echo "--- pylotto is serving the Layotto API on 127.0.0.1:34904; Ctrl-C stops it."
wait $pid
