#!/usr/bin/env bash
# Build the two wheels (pylotto-client, then pylotto) into OUT, with the lock file beside them:
# the image's build stage, `make wheels` and tests/packaging all run this.
# usage: deploy/build-wheels.sh OUT [pip wheel options, e.g. --no-build-isolation]
set -euo pipefail
out=$(realpath -m "${1:?usage: build-wheels.sh OUT [pip wheel options]}")
shift
root=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-python3}
# setuptools writes build/ and *.egg-info beside the sources: build from a copy
work=$(mktemp -d -t pylotto-wheels-XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/clients" "$out"
cp -r "$root/pyproject.toml" "$root/README.md" "$root/src" "$work/"
cp -r "$root/clients/python" "$work/clients/python"
find "$work" -name __pycache__ -prune -exec rm -rf {} +
"$PYTHON" -m pip wheel --quiet --no-deps --wheel-dir "$out" "$@" "$work/clients/python" "$work"
cp "$root/requirements/lock.txt" "$out/lock.txt"
ls "$out"
