#!/usr/bin/env bash
# History read benchmark: cold and warm latency of one series' hourly candles over DAYS days of
# history of PAIRS pairs, read through the core's range reader and its cache (what
# `/api/candles?from=&to=` runs).
#
#   scripts/bench-history.sh [DAYS] [PAIRS]      defaults: 30 days x 2000 pairs
#
# The days are written by the core's own history writer (`engine::history`) into BENCH_DIR
# (default /tmp/cryptomon-bench-history), never into the repository, once: a second run reuses
# them. Cold: a new cache (every day read and its series decoded); warm: the median and p95 of
# 50 more queries on the same cache (one conditional read per day, nothing decoded).
#
# Builds `cryptomon-core`'s `bench_history` example with profile `profiling` (release, with
# incremental builds) in CARGO_TARGET_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
days=${1:-30} pairs=${2:-2000}
dir=${BENCH_DIR:-/tmp/cryptomon-bench-history}/d${days}p${pairs}
cargo build -q -p cryptomon-core --example bench_history --profile profiling
bin=${CARGO_TARGET_DIR:-target}/profiling/examples/bench_history
mkdir -p "$dir"
"$bin" "$dir" "$days" "$pairs"
