#!/usr/bin/env bash
# Regenerate requirements/lock.txt: resolve pyproject.toml's ranges afresh (newest versions the
# ranges and the package indexes allow) in a throw-away venv, then record what was installed.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
venv=$(mktemp -d -t pylotto-lock-XXXXXX)
trap 'rm -rf "$venv"' EXIT
"$PYTHON" -m venv "$venv"
"$venv/bin/python" -m pip install -q --upgrade pip
"$venv/bin/python" -m pip install -q -e clients/python -e '.[dev]'
{
  sed -n '1,/^# Regenerate/p' requirements/lock.txt
  "$venv/bin/python" -m pip freeze --all --exclude-editable | grep -v '^pip=='
} > requirements/lock.txt.new
mv requirements/lock.txt.new requirements/lock.txt
echo "requirements/lock.txt: $(grep -c '==' requirements/lock.txt) packages"
