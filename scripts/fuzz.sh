#!/usr/bin/env bash
# Fuzzing with cargo-fuzz (libFuzzer): the targets in fuzz/fuzz_targets, the corpora in
# fuzz/corpus (committed, minimized), the inputs of fixed crashes in fuzz/regressions.
#
#   scripts/fuzz.sh run [SECONDS] [TARGET...]  each target for SECONDS (default 600), two at a time
#   scripts/fuzz.sh ci                          build, then each target for CI_FUZZ_SECS (default 15);
#                                               the `replay_only` ones replay their inputs only
#   scripts/fuzz.sh seed                        (re)write the seeds made from the recorded fixtures
#   scripts/fuzz.sh cmin [TARGET...]            minimize the corpora after a long run
#   scripts/fuzz.sh list                        the targets
#
# Needs the nightly toolchain and cargo-fuzz (`rustup toolchain install nightly --profile
# minimal && cargo install cargo-fuzz --locked`); `ci` installs them when missing. The build
# goes to FUZZ_TARGET_DIR (default fuzz/target). A crash stops the run: its input is saved
# under fuzz/artifacts/TARGET/ and `cargo +nightly fuzz run -O TARGET <file>` replays it.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

target_dir="${FUZZ_TARGET_DIR:-$root/fuzz/target}"
logs="${FUZZ_LOG_DIR:-$root/fuzz/logs}"
# Long enough for a snapshot with a few quotes and its raw body, or the largest fixture.
max_len=16384

targets() {
  ls fuzz/fuzz_targets | sed 's/\.rs$//'
}

# need WHAT MODE CHECK INSTALL: runs INSTALL when CHECK fails and MODE is `install`; otherwise
# stops, saying what is missing and the command that installs it.
need() {
  local what=$1 mode=$2 check=$3 install=$4
  bash -c "$check" >/dev/null 2>&1 && return 0
  if [[ $mode == install ]]; then
    $install
  else
    echo "fuzz: $what is missing: $install" >&2
    exit 2
  fi
}

need_tools() {
  need "the nightly toolchain" "${1:-}" "rustup toolchain list | grep -q '^nightly'" \
    "rustup toolchain install nightly --profile minimal"
  need cargo-fuzz "${1:-}" "command -v cargo-fuzz" "cargo install cargo-fuzz --locked"
}

build() {
  echo "fuzz: building the targets (release with debug assertions, sanitizer coverage) in $target_dir" >&2
  (cd fuzz && cargo +nightly fuzz build -O --target-dir "$target_dir")
}

# Targets CI only replays (corpus and regressions, no exploration), each with its reason.
# window_state: exploring finds, within about a minute, a corrupt page header on which
# polars-parquet 0.55 asks for 2^61 bytes and the process aborts (an allocation failure is not a
# panic, so Window::from_parquet cannot catch it); the input is kept in fuzz/open/window_state/.
replay_only="window_state"

# run_one TARGET SECONDS [FLAGS]: fuzz TARGET for SECONDS on its corpus (with `-runs=0` in
# FLAGS, only replay it); prints one summary line.
run_one() {
  local t=$1 secs=$2 flags=${3:-} log="$logs/$1.log"
  mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t"
  local status=0
  # The inputs of past crashes replay first, from their own directory: cmin never drops them.
  local extra=()
  [[ -d fuzz/regressions/$t ]] && extra=("regressions/$t")
  (cd fuzz && cargo +nightly fuzz run -O --target-dir "$target_dir" "$t" "corpus/$t" "${extra[@]}" -- \
    -max_total_time="$secs" -max_len=$max_len -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 $flags) >"$log" 2>&1 || status=$?
  # libFuzzer's status lines: "#<execs> NEW cov: <edges> ft: <features> corp: <n>/<size> ...".
  local runs growth
  runs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' || echo '?')
  # Edges covered at a tenth of the runs and at the end, and the run that added the last edge:
  # how close the target came to no longer finding new paths.
  growth=$(awk '/^#[0-9]+/ && /cov:/ {
      for (i = 1; i <= NF; i++) if ($i == "cov:") c = $(i + 1) + 0
      n = substr($1, 2) + 0; run[++k] = n; cov[k] = c
      if (c > best) { best = c; at = n } }
    END { if (!k) { print "no coverage lines"; exit }
      for (j = 1; j <= k && run[j] < run[k] / 10; j++) {}
      printf "%d edges (%d at a tenth of the runs), the last new edge at run %d", cov[k], cov[j], at }' "$log")
  if [[ $status -ne 0 ]]; then
    echo "$t: FAILED after ${runs} runs (see $log; input under fuzz/artifacts/$t/)"
    grep -E 'panicked at|SUMMARY|Test unit written' "$log" | head -5 | sed 's/^/  /'
    return 1
  fi
  echo "$t: ${secs} s, ${runs} runs, ${growth}, corpus $(ls "fuzz/corpus/$t" | wc -l) inputs"
}

# The seeds: every recorded exchange body behind the status byte the targets read (its index in
# cryptomon_fuzz::exchange::STATUSES), snapshots and keys from the golden data (the first of each
# source and the corrupt ones), the example config, API requests.
seed() {
  local fx=cryptomon-core/tests/fixtures
  local statuses=(200 400 404 418 429 451 500 503)
  for kind in binance coingecko kraken; do
    mkdir -p "fuzz/corpus/$kind"
    for f in "$fx/$kind"/*.json; do
      local name status=200 byte=0
      name=$(basename "$f" .json)
      if [[ $name =~ ^error_([0-9]{3})_ ]]; then status=${BASH_REMATCH[1]}; fi
      for i in "${!statuses[@]}"; do [[ ${statuses[$i]} == "$status" ]] && byte=$i; done
      { printf "\\x$(printf %02x "$byte")"; cat "$f"; } >"fuzz/corpus/$kind/seed-$name"
    done
  done
  mkdir -p fuzz/corpus/coinbase
  for t in "$fx"/coinbase/ticker_*.json; do
    local name stats
    name=$(basename "$t" .json)
    stats="$fx/coinbase/stats_${name#ticker_}.json"
    [[ -f $stats ]] || stats="$fx/coinbase/stats_docs_example.json"
    { printf '\x00'; cat "$t"; printf '\x00'; cat "$stats"; } >"fuzz/corpus/coinbase/seed-$name"
    { printf '\x00'; cat "$t"; } >"fuzz/corpus/coinbase/seed-$name-no-stats"
  done
  for f in "$fx"/coinbase/error_*.json; do
    local name
    name=$(basename "$f" .json)
    { printf '\x04'; cat "$f"; } >"fuzz/corpus/coinbase/seed-$name"
  done
  mkdir -p fuzz/corpus/api
  local i=0
  while read -r request; do
    printf '%s' "$request" >"fuzz/corpus/api/seed-$i"
    i=$((i + 1))
  done <<'EOF'
/api/health
/api/summary
/api/metrics
/api/metrics/demo:BTC-USD:price
/api/metrics/demo:ETH-USD:volume
/api/metrics/demo:BTC-USD:price?x=1
/api/candles?source=demo&pair=BTC-USD&interval=1m
/api/candles?source=demo&pair=ETH-USD&interval=1h
/api/candles?source=demo&pair=BTC-USD
/api/alerts?since=2026-11-28T00:00:00Z&rule=spike&pair=BTC-USD
/api/alerts
/api/events
/openapi.json
/
/assets/app.js
/assets/..%2f..%2fCargo.toml
/api/metrics/demo%3ABTC-USD%3Aprice
EOF
  # Golden snapshots (the first of each source, and the two corrupt ones) and their keys.
  mkdir -p fuzz/corpus/snapshot fuzz/corpus/keys fuzz/corpus/config
  zcat tests/data/golden/small/raw.tsv.gz | awk -F'\t' '
    { split($1, p, "/"); src = p[2] }
    !(src in seen) || $1 ~ /T1158[0-9][0-9]Z/ { seen[src] = 1; n++
      printf "%s", $2 > ("fuzz/corpus/snapshot/seed-golden-" n)
      printf "%s", $1 > ("fuzz/corpus/keys/seed-golden-" n) }'
  cp cryptomon.toml fuzz/corpus/config/seed-cryptomon.toml
  seed_bounds
  echo "fuzz: seeds written" >&2
}

# The seeds of the targets of issue 20: 429 headers behind their 6-byte prefix (45 s left, a
# 250 ms backoff), the summary of a demo store, an alert state and events as
# the transform writes them, and the Lambda test events behind the byte that picks the handler.
seed_bounds() {
  mkdir -p fuzz/corpus/headers fuzz/corpus/summary \
    fuzz/corpus/alert_state fuzz/corpus/alert_event fuzz/corpus/lambda_events
  local prefix='\xc8\xaf\x00\x00\xfa\x00' i=0
  while read -r head; do
    { printf "$prefix"; printf '%b' "$head"; } >"fuzz/corpus/headers/seed-$i"
    i=$((i + 1))
  done <<'EOF'
Retry-After: 120
Retry-After: 5
Retry-After: 18446744073709551615
Retry-After: 99999999999999999999999
Retry-After: Fri, 31 Dec 9999 23:59:59 GMT
Retry-After: Sun, 06 Nov 1994 08:49:37 GMT
Retry-After: Sunday, 06-Nov-94 08:49:37 GMT
Retry-After: Sun Nov  6 08:49:37 1994
Retry-After: -5
Content-Type: application/json\r\nContent-Length: 77\r\nRetry-After: 30
EOF
  local store
  store=$(mktemp -d)
  cargo run -q -p cryptomon-server --bin cryptomon -- collect --demo --once --store "$store" >/dev/null
  cargo run -q -p cryptomon-server --bin cryptomon -- transform --store "$store" >/dev/null
  # Three series and two spreads: the whole demo summary is longer than max_len.
  jq -c '.series |= .[:3] | .spreads |= .[:2]' "$store/aggregates/summary.json" \
    >fuzz/corpus/summary/seed-demo
  # The window state: its head (a manifest naming a base) and the base (a minute of the demo).
  mkdir -p fuzz/corpus/window_state
  cp "$store/aggregates/window.v1.parquet" fuzz/corpus/window_state/seed-demo-head
  cp "$store/aggregates/window.v1.base-a.parquet" fuzz/corpus/window_state/seed-demo-base
  rm -rf "$store"
  local subject='{"rule":"spike","source":"kraken","pair":"BTC-USD","measure":"price"}'
  local key='alerts/date=2026-12-01/2026-12-01T09:58:00Z.spike.kraken.BTC-USD.price.fired.json'
  printf '%s' "{\"format\":1,\"last_tick\":\"2026-12-01T10:00:00Z\",\"active\":{\"spike/kraken/BTC-USD/price\":{\"subject\":$subject,\"kind\":\"spike\",\"value\":91000.5,\"reference\":30000.25,\"fired_at\":\"2026-12-01T09:58:00Z\"}},\"last_fired\":{\"spike/kraken/BTC-USD/price\":\"2026-12-01T09:58:00Z\"},\"pending\":[{\"key\":\"$key\",\"sink\":\"sns\",\"attempts\":2,\"error\":\"HTTP 503\"}]}" \
    >fuzz/corpus/alert_state/seed-one-active
  printf '%s' '{"format":1,"last_tick":null,"active":{},"last_fired":{},"pending":[]}' \
    >fuzz/corpus/alert_state/seed-fresh
  printf '%s' '{"schema":"cryptomon.alert/v1","status":"fired","rule":"spike","kind":"spike","source":"kraken","pair":"BTC-USD","measure":"price","value":91000.5,"reference":30000.25,"ratio":3.0333,"tick":"2026-12-01T09:58:00Z","fired_at":"2026-12-01T09:58:00Z"}' \
    >fuzz/corpus/alert_event/seed-fired
  printf '%s' '{"schema":"cryptomon.alert/v1","status":"resolved","rule":"wide","kind":"spread","source":null,"pair":"BTC-USD","measure":null,"value":1.5,"reference":1.0,"ratio":1.5,"tick":"2026-12-01T10:05:00Z","fired_at":"2026-12-01T09:58:00Z"}' \
    >fuzz/corpus/alert_event/seed-resolved-spread
  local events=cryptomon-lambda/tests/events f
  for f in scheduled-event stepfunctions-collect; do
    { printf '\x00'; cat "$events/$f.json"; } >"fuzz/corpus/lambda_events/seed-collector-$f"
  done
  printf '\x00{}' >fuzz/corpus/lambda_events/seed-collector-empty
  for f in s3-object-created s3-object-created-aggregates stepfunctions-transform sqs-message; do
    { printf '\x01'; cat "$events/$f.json"; } >"fuzz/corpus/lambda_events/seed-transformer-$f"
  done
  { printf '\x02'; cat "$events/apigw-v2-summary.json"; } >fuzz/corpus/lambda_events/seed-api-summary
}

case "${1:-}" in
  list)
    targets
    ;;
  seed)
    seed
    ;;
  run)
    shift
    secs=${1:-600}
    shift || true
    need_tools
    build
    mkdir -p "$logs"
    selected=("$@")
    [[ ${#selected[@]} -gt 0 ]] || mapfile -t selected < <(targets)
    export -f run_one
    export target_dir logs max_len
    printf '%s\n' "${selected[@]}" | xargs -P "${FUZZ_JOBS:-2}" -I{} bash -c "run_one {} $secs"
    ;;
  ci)
    need_tools install
    build
    mkdir -p "$logs"
    failed=0
    for t in $(targets); do
      if [[ " $replay_only " == *" $t "* ]]; then
        run_one "$t" "${CI_FUZZ_SECS:-15}" -runs=0 || failed=1
      else
        run_one "$t" "${CI_FUZZ_SECS:-15}" || failed=1
      fi
    done
    exit $failed
    ;;
  cmin)
    shift
    need_tools
    selected=("$@")
    [[ ${#selected[@]} -gt 0 ]] || mapfile -t selected < <(targets)
    for t in "${selected[@]}"; do
      before=$(ls "fuzz/corpus/$t" | wc -l)
      (cd fuzz && cargo +nightly fuzz cmin -O --target-dir "$target_dir" "$t" "corpus/$t" -- \
        -max_len=$max_len) >"$logs/$t.cmin.log" 2>&1
      echo "$t: corpus $before -> $(ls "fuzz/corpus/$t" | wc -l) inputs"
    done
    ;;
  *)
    sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
