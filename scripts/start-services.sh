#!/usr/bin/env bash
# Start every server the test suite needs that is not running yet. The foundation suite runs
# on embedded components only; backend issues add their servers here.
set -euo pipefail
echo "start-services: the current suite needs no external server"
