#!/usr/bin/env bash
# Starts or stops a Prometheus on loopback for the Prometheus tests.
#
#   eval "$(scripts/prometheus.sh start)"   # starts Prometheus on a free port, waits until it
#                                           # is ready, prints `export CRYPTOMON_TEST_PROMETHEUS=...`
#                                           # and `export CRYPTOMON_TEST_PROMETHEUS_TARGETS=...`
#   scripts/prometheus.sh stop              # stops the server this script started
#
# It scrapes, every second, the targets listed in the JSON files of the directory
# $CRYPTOMON_TEST_PROMETHEUS_TARGETS (Prometheus's file service discovery): a test starts
# `cryptomon serve --demo` on a free port and writes `[{"targets": ["127.0.0.1:PORT"]}]` into
# a file of its own there, which Prometheus picks up at once. It loads the alerting rules of
# deploy/prometheus/, so the test sees them evaluated too. Needs Debian's `prometheus` package.
# The PID file is per user, so parallel worktrees that each start their own server do not stop
# each other's.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
pidfile="${PROMETHEUS_PIDFILE:-${TMPDIR:-/tmp}/cryptomon-prometheus-$(id -u).pid}"

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

case "${1:-}" in
start)
    port="${PROMETHEUS_PORT:-$(free_port)}"
    dir="$(mktemp -d "${TMPDIR:-/tmp}/cryptomon-prometheus-$port.XXXXXX")"
    mkdir -p "$dir/targets"
    cat >"$dir/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files:
  - $root/deploy/prometheus/alerts.yml
scrape_configs:
  - job_name: cryptomon
    file_sd_configs:
      - files: ['$dir/targets/*.json']
        refresh_interval: 1s
EOF
    prometheus --config.file="$dir/prometheus.yml" --storage.tsdb.path="$dir/data" \
        --web.listen-address="127.0.0.1:$port" >"$dir/prometheus.log" 2>&1 &
    echo $! >"$pidfile"
    echo "$dir" >"$pidfile.dir"
    for _ in $(seq 1 100); do
        if curl -fsS "http://127.0.0.1:$port/-/ready" >/dev/null 2>&1; then
            echo "export CRYPTOMON_TEST_PROMETHEUS=http://127.0.0.1:$port"
            echo "export CRYPTOMON_TEST_PROMETHEUS_TARGETS=$dir/targets"
            echo "# prometheus pid $(cat "$pidfile"), log $dir/prometheus.log" >&2
            exit 0
        fi
        if ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
            echo "prometheus exited at start; its log ($dir/prometheus.log):" >&2
            cat "$dir/prometheus.log" >&2
            exit 1
        fi
        sleep 0.1
    done
    echo "prometheus did not answer on port $port within 10 s; log: $dir/prometheus.log" >&2
    exit 1
    ;;
stop)
    if [[ -f "$pidfile" ]]; then
        kill "$(cat "$pidfile")" 2>/dev/null || true
        rm -f "$pidfile"
    fi
    if [[ -f "$pidfile.dir" ]]; then
        # Its data and targets: a stopped server's are of no use.
        rm -rf "$(cat "$pidfile.dir")"
        rm -f "$pidfile.dir"
    fi
    ;;
*)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
