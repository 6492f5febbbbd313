#!/usr/bin/env bash
# Install the sidecar wheel (and pylotto-client, its dependency) from WHEELS into a new venv at
# VENV, the dependencies at the lock file's versions: the image's runtime stage runs this, and
# so does tests/packaging/test_image_recipe.py. pip's own settings (PIP_INDEX_URL, PIP_NO_INDEX,
# PIP_FIND_LINKS...) say where the dependencies come from.
# usage: deploy/install.sh WHEELS VENV   (PYTHON: the interpreter, with pip; default python3)
set -euo pipefail
wheels=$(realpath "${1:?usage: install.sh WHEELS VENV}")
venv=${2:?usage: install.sh WHEELS VENV}
PYTHON=${PYTHON:-python3}
# the venv without pip of its own (the image needs none at run time): PYTHON's pip installs into it
"$PYTHON" -m venv --without-pip "$venv"
shopt -s failglob
"$PYTHON" -m pip --python "$venv/bin/python" install --quiet --no-cache-dir --find-links "$wheels" \
  --constraint "$wheels/lock.txt" "$wheels"/pylotto-[0-9]*.whl
"$venv/bin/pylotto" --version
