#!/usr/bin/env bash
# Install the sidecar wheel (and pylotto-client, its dependency) from WHEELS into a new venv at
# VENV, the dependencies at the lock file's versions: the image's runtime stage runs this, and
# so does tests/packaging/test_image_recipe.py. pip's own settings (PIP_INDEX_URL, PIP_NO_INDEX,
# PIP_FIND_LINKS...) say where the dependencies come from.
# usage: deploy/install.sh WHEELS VENV
set -euo pipefail
wheels=$(realpath "${1:?usage: install.sh WHEELS VENV}")
venv=${2:?usage: install.sh WHEELS VENV}
PYTHON=${PYTHON:-python3}
"$PYTHON" -m venv "$venv"
shopt -s failglob
"$venv/bin/python" -m pip install --quiet --no-cache-dir --find-links "$wheels" \
  --constraint "$wheels/lock.txt" "$wheels"/pylotto-[0-9]*.whl
"$venv/bin/pylotto" --version
