#!/usr/bin/env bash
# Regenerate the Python gRPC code (and .pyi type stubs) for every .proto under src/pylotto/proto.
# Generated files are committed and never edited by hand.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
export PATH="$(dirname "$PYTHON"):$PATH"  # protoc-gen-mypy lives beside python
mapfile -t protos < <(find src/pylotto/proto -name '*.proto' | sort)
"$PYTHON" -m grpc_tools.protoc -I src --python_out=src --grpc_python_out=src --mypy_out=src \
  --mypy_grpc_out=src "${protos[@]}"
echo "generated from ${#protos[@]} proto files"
