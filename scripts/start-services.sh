#!/usr/bin/env bash
# Start every server the test suite needs that is not running yet, installing the ones this
# machine does not ship (etcd, ZooKeeper) from Debian's packages, then wait until each answers.
# A server that cannot be started fails this script (and so `make test` / CI): never a skip.
set -euo pipefail

log() { echo "start-services: $*"; }
is_up() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for() {  # name port
  for _ in $(seq 1 120); do
    if is_up "$2"; then log "$1 is up on 127.0.0.1:$2"; return 0; fi
    sleep 0.5
  done
  log "$1 did not come up on 127.0.0.1:$2" >&2
  return 1
}

ensure() {  # name port start-command...
  local name=$1 port=$2; shift 2
  if is_up "$port"; then log "$name already running on 127.0.0.1:$port"; return 0; fi
  log "starting $name"
  "$@"
  wait_for "$name" "$port"
}

install_debs() {  # package...
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

start_etcd() {
  mkdir -p /var/lib/pylotto-etcd
  setsid nohup etcd --name pylotto-test --data-dir /var/lib/pylotto-etcd \
    --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
    --listen-peer-urls http://127.0.0.1:2380 >/var/log/pylotto-etcd.log 2>&1 < /dev/null &
}

start_zookeeper() {
  setsid nohup /usr/share/zookeeper/bin/zkServer.sh start >/var/log/pylotto-zookeeper.log 2>&1 \
    < /dev/null
}

# redis-tools: redis-cli, which creates the Redis Cluster of tests/integration/redis_ha (its
# Sentinels are `redis-server --sentinel`)
install_debs redis-server redis-tools
ensure redis 6379 redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" \
  --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log
ensure postgresql 5432 pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start
ensure mariadb 3306 start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
# one apt-get run for all: etcd-client is etcdctl (the etcd auth test); chromium: the dashboard
# tests drive Debian's Chromium through Playwright; iproute2: ip netns, veth, bridge
# (tests/e2e/test_several_hosts.py); python3-pip, python3-venv: the image's python3, one every
# user may run (tests/packaging/test_image_recipe.py)
install_debs etcd-server etcd-client zookeeper memcached chromium iproute2 python3-pip python3-venv
ensure etcd 2379 start_etcd
ensure zookeeper 2181 start_zookeeper
# -I 4m: items up to 4 MiB (the suites store 1 MiB values; the default limit is 1 MiB in all)
ensure memcached 11211 memcached -d -u memcache -l 127.0.0.1 -p 11211 -m 256 -I 4m
ensure rabbitmq 5672 rabbitmq-server -detached
ensure mosquitto 1883 mosquitto -d -c /etc/mosquitto/mosquitto.conf
ensure nats 4222 start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server \
  -- -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log

# The Node.js pluggable component used by the tests: its pinned packages (package-lock.json).
# (tests/support/pluggable.py runs the same `npm ci` when node_modules is missing.)
log "npm ci in examples/pluggable/node"
(cd "$(dirname "$0")/../examples/pluggable/node" && npm ci --no-audit --no-fund >/dev/null)
log "npm ci in tests/compat/layotto_node"
(cd "$(dirname "$0")/../tests/compat/layotto_node" && npm ci --ignore-scripts --no-audit --no-fund \
  >/dev/null)
