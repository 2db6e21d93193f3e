#!/usr/bin/env bash
# API benchmark (not a test): cryptomon (release) against the FastAPI peer of
# ../shared/peers, on the same data (3 sources x 100 pairs), in the same run. See
# docs/performance.md. Needs wrk and the peer's venv (its README).
#   scripts/bench-api.sh            # D=/tmp/bench/d, peer copy P=/tmp/bench/d-peer
# Preparing the data (once):
#   python3 ../shared/peers/gen_snapshots.py --dir $D --sources 3 --pairs 100
#   cp -r $D $P && /work/.venv-peers/bin/python ../shared/peers/reference_pandas.py $P
#   cryptomon transform --store $D
set -euo pipefail
BIN=${BIN:-${CARGO_TARGET_DIR:-target}/release/cryptomon}
D=${D:-/tmp/bench/d}; P=${P:-/tmp/bench/d-peer}
PY=${PY:-/work/.venv-peers/bin/python}
$BIN serve --store $D --read-only --addr 127.0.0.1:18091 >/dev/null 2>&1 &
c=$!
$PY "$(dirname "$0")/../../shared/peers/peer_fastapi.py" $P 18092 >/dev/null 2>&1 &
p=$!
trap 'kill $c $p 2>/dev/null || true' EXIT
sleep 5
curl -sf -o /dev/null http://127.0.0.1:18091/api/summary
curl -sf -o /dev/null http://127.0.0.1:18092/api/summary
run() { echo "### $1"; wrk -t2 -c64 -d${DUR:-30s} --latency "$2" | grep -E "Requests/sec|Transfer/sec|99%|Non-2xx|Socket errors"; }
run "cryptomon /api/summary" "http://127.0.0.1:18091/api/summary"
run "peer /api/summary" "http://127.0.0.1:18092/api/summary"
run "cryptomon /api/candles" "http://127.0.0.1:18091/api/candles?source=coinbase&pair=BTC-USD&interval=5m"
run "peer /api/candles" "http://127.0.0.1:18092/api/candles?source=coinbase&pair=BTC-USD&interval=5m"
run "cryptomon /api/metrics/{id}" "http://127.0.0.1:18091/api/metrics/coinbase:BTC-USD:price"
