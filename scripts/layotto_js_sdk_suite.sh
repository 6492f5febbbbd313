#!/usr/bin/env bash
# The Layotto Node SDK's own unit suite (layotto/js-sdk v1.18.0, `npm run test:unit`) against
# `pylotto run` started with the repository's own demo/config.json, unchanged — as the SDK's CI
# runs it against Layotto (nodejs.yml: Redis, etcd, the demo HTTP server, then the suite).
#
#   scripts/layotto_js_sdk_suite.sh <a layotto/js-sdk checkout or a bare git dir> [workdir]
#
# Not part of CI: the SDK's tests dial Layotto's fixed port 34904 (its config's listener), so
# this must not run beside another sidecar on that port. Needs Redis and etcd on their standard
# ports (scripts/start-services.sh), node and npm. The SDK's `build:grpc` downloads protoc, which
# cannot run offline; the npm tarball `layotto@1.18.0` (installed by start-services.sh in
# tests/compat/layotto_node) carries the same generated code in proto/, so it is copied instead.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
source_dir="${1:?usage: $0 <js-sdk checkout or bare git dir> [workdir]}"
work="${2:-$(mktemp -d /tmp/layotto-js-sdk.XXXXXX)}"
generated="$here/tests/compat/layotto_node/node_modules/layotto/proto"
[[ -d "$generated" ]] || { echo "missing $generated: run scripts/start-services.sh" >&2; exit 2; }

mkdir -p "$work"
if [[ -d "$source_dir/.git" || -f "$source_dir/package.json" ]]; then
  cp -a "$source_dir/." "$work/"
else  # a bare mirror: the v1.18.0 tree
  git --git-dir="$source_dir" archive v1.18.0 | tar -x -C "$work"
fi
cd "$work"
rm -rf proto && cp -a "$generated" proto
echo "== npm install (scripts off) in $work"
npm install --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null
npm install --ignore-scripts --no-audit --no-fund --loglevel=error --no-save '@types/node@20' >/dev/null

logs="$work/.pylotto-logs"; mkdir -p "$logs"
"$here/.venv/bin/pylotto" run -c demo/config.json >"$logs/sidecar.log" 2>&1 &
sidecar=$!
node demo/rpc/http/server.js >"$logs/http-server.log" 2>&1 &
http_server=$!
trap 'kill $sidecar $http_server 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  (echo > /dev/tcp/127.0.0.1/34904) 2>/dev/null && break
  sleep 0.2
done
echo "== npm run test:unit (sidecar log: $logs/sidecar.log)"
set +e
timeout 600 npm run test:unit 2>&1 | tee "$logs/jest.log" | grep -E "^(Tests|Test Suites):"
rc=${PIPESTATUS[0]}
set -e
echo "jest exit code: $rc"
exit "$rc"
