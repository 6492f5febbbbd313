#!/usr/bin/env bash
# Regenerate the Python gRPC code (and .pyi type stubs) for every .proto of the two packages:
# clients/python/src/pylotto/proto (the SDK's: Layotto's runtime API, pylotto's state query) and
# src/pylotto/proto (the sidecar's own). Each is generated into its own tree; the sidecar's protos
# may import the SDK's. Generated files are committed and never edited by hand.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
export PATH="$(dirname "$PYTHON"):$PATH"  # protoc-gen-mypy lives beside python
total=0
for root in clients/python/src src; do
  mapfile -t protos < <(find "$root/pylotto/proto" -name '*.proto' | sort)
  "$PYTHON" -m grpc_tools.protoc -I "$root" -I clients/python/src --python_out="$root" \
    --grpc_python_out="$root" --mypy_out="$root" --mypy_grpc_out="$root" "${protos[@]}"
  total=$((total + ${#protos[@]}))
done
echo "generated from $total proto files"
