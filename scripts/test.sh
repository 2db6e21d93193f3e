#!/usr/bin/env bash
# The test command: installs and starts what the tests need, then runs every test.
#   scripts/test.sh [extra cargo test arguments]
# Starts a moto S3 server on a free loopback port for the S3 tests and stops it on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/cache/cryptomon/target}"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
moto_log=$(mktemp)
# moto with one request at a time, so its conditional writes are atomic (see the script).
python3 scripts/moto_server.py "$port" >"$moto_log" 2>&1 &
moto_pid=$!
trap 'kill $moto_pid 2>/dev/null || true; rm -f "$moto_log"' EXIT
for _ in $(seq 1 100); do
  if python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/moto-api/')" >/dev/null 2>&1; then
    break
  fi
  sleep 0.2
done
export CRYPTOMON_TEST_S3_ENDPOINT="http://127.0.0.1:$port"
export AWS_EC2_METADATA_DISABLED=true
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1
echo "test: moto S3 on $CRYPTOMON_TEST_S3_ENDPOINT" >&2

# Prometheus's alert rules (deploy/prometheus/), then a Prometheus for tests/prometheus.rs,
# stopped on exit. A PID file of this run's own, so a parallel run's server is not touched.
promtool check rules deploy/prometheus/alerts.yml
promtool test rules deploy/prometheus/alerts_test.yml
export PROMETHEUS_PIDFILE
PROMETHEUS_PIDFILE=$(mktemp)
trap 'kill $moto_pid 2>/dev/null || true; rm -f "$moto_log"; scripts/prometheus.sh stop' EXIT
# An assignment, so a failed start stops the script (`eval "$(...)"` would hide it).
prometheus_env=$(scripts/prometheus.sh start)
eval "$prometheus_env"

cargo test --workspace --all-features "$@"
