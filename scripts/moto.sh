#!/usr/bin/env bash
# Starts or stops a moto S3 server on loopback for the S3 tests.
#
#   eval "$(scripts/moto.sh start)"   # starts moto on a free port, waits until it answers,
#                                     # prints `export CRYPTOMON_TEST_S3_ENDPOINT=...` and the PID
#   scripts/moto.sh stop              # stops the server this script started
#
# Needs `pip install 'moto[server]'`. The PID file is per user, so parallel worktrees that each
# start their own server do not stop each other's.
set -euo pipefail

pidfile="${MOTO_PIDFILE:-${TMPDIR:-/tmp}/cryptomon-moto-$(id -u).pid}"

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

case "${1:-}" in
start)
    port="${MOTO_PORT:-$(free_port)}"
    log="${TMPDIR:-/tmp}/cryptomon-moto-$port.log"
    # moto with one request at a time, so its conditional writes are atomic (see the script).
    python3 "$(dirname "$0")/moto_server.py" "$port" >"$log" 2>&1 &
    echo $! >"$pidfile"
    for _ in $(seq 1 100); do
        if curl -fsS "http://127.0.0.1:$port/moto-api/" >/dev/null 2>&1; then
            echo "export CRYPTOMON_TEST_S3_ENDPOINT=http://127.0.0.1:$port"
            echo "# moto pid $(cat "$pidfile"), log $log" >&2
            exit 0
        fi
        if ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
            echo "moto exited at start; its log ($log):" >&2
            cat "$log" >&2
            exit 1
        fi
        sleep 0.1
    done
    echo "moto did not answer on port $port within 10 s; log: $log" >&2
    exit 1
    ;;
stop)
    if [[ -f "$pidfile" ]]; then
        kill "$(cat "$pidfile")" 2>/dev/null || true
        rm -f "$pidfile"
    fi
    ;;
*)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
