#!/usr/bin/env bash
# Checks the API document against OpenAPI 3.1 and the server against the document: starts
# `cryptomon serve --demo --store memory` on a free loopback port, validates /openapi.json with
# openapi-spec-validator, then runs Schemathesis with every check. Exits non-zero on a finding.
#
#   scripts/check-api.sh                  # builds cryptomon as the tests do (debug)
#   CRYPTOMON_BIN=path scripts/check-api.sh   # or checks a binary built elsewhere
#
# SCHEMATHESIS_MAX_TIME (seconds, default 120) and SCHEMATHESIS_SEED (default 1) tune the run.
set -euo pipefail
cd "$(dirname "$0")/.."

fail() {
  echo "check-api: FAILED: $*" >&2
  exit 1
}

# Pinned major versions: their command lines are what this script speaks.
has_version() {
  python3 -c "import importlib.metadata as m, sys; sys.exit(not m.version('$1').startswith('$2'))" \
    >/dev/null 2>&1
}
need=()
has_version openapi-spec-validator 0.9. || need+=('openapi-spec-validator==0.9.*')
has_version schemathesis 4. || need+=('schemathesis==4.*')
if ((${#need[@]})); then
  echo "check-api: installing ${need[*]} from PyPI" >&2
  python3 -m pip install -q "${need[@]}" || fail "cannot install ${need[*]}"
fi

if [ -z "${CRYPTOMON_BIN:-}" ]; then
  # The tests' own build (profile and features), so after scripts/test.sh nothing is compiled.
  cargo test --workspace --all-features --no-run --quiet || fail "cargo build"
  target_dir=$(cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
  CRYPTOMON_BIN="$target_dir/debug/cryptomon"
fi
[ -x "$CRYPTOMON_BIN" ] || fail "no cryptomon binary at $CRYPTOMON_BIN"

work=$(mktemp -d)
server_pid=
stop() {
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap stop EXIT

# Port 0: the server picks a free port and prints its address on the first line.
"$CRYPTOMON_BIN" serve --demo --store memory --addr 127.0.0.1:0 >"$work/serve.out" 2>"$work/serve.err" &
server_pid=$!
base=
for _ in $(seq 1 300); do
  base=$(grep -o 'http://127\.0\.0\.1:[0-9]*' "$work/serve.out" | head -1 || true)
  # Ready when the demo history is transformed: before that the data routes answer 503.
  if [ -n "$base" ] && curl -fsS "$base/api/summary" -o /dev/null 2>/dev/null; then
    break
  fi
  kill -0 "$server_pid" 2>/dev/null || { cat "$work/serve.err" >&2; fail "the server exited"; }
  sleep 0.5
done
curl -fsS "${base:-http://127.0.0.1:0}/api/summary" -o /dev/null 2>/dev/null ||
  { tail -20 "$work/serve.err" >&2; fail "no aggregates served at ${base:-?} within 150 s"; }
echo "check-api: cryptomon serve --demo on $base" >&2

echo "check-api: openapi-spec-validator" >&2
curl -fsS "$base/openapi.json" -o "$work/openapi.json" || fail "GET /openapi.json"
python3 -m openapi_spec_validator "$work/openapi.json" ||
  fail "/openapi.json is not valid OpenAPI 3.1 (openapi-spec-validator above)"

echo "check-api: schemathesis, every check" >&2
# A candle range may be schema-valid and still refused: `from` after `to`, or more candles than
# the cap (docs/api.md); a JSON schema cannot state either, so a 400 there is expected (the
# other statuses are Schemathesis's defaults; not_a_server_error still fails any 5xx).
cat >"$work/schemathesis.toml" <<'TOML'
[[operations]]
include-path = "/api/candles"
checks.positive_data_acceptance.expected-statuses = ["2xx", "3xx", "400", "401", "403", "404", "409", "429", "5xx"]
TOML
# /api/events never ends, and Schemathesis reads whole bodies (tests/events.rs covers it).
# One worker: the machine is shared with the build. No example database: nothing is written
# outside $work.
(cd "$work" && python3 -m schemathesis.cli run "$base/openapi.json" \
  --checks all \
  --exclude-path /api/events \
  --max-examples 30 \
  --max-time "${SCHEMATHESIS_MAX_TIME:-120}" \
  --seed "${SCHEMATHESIS_SEED:-1}" \
  --workers 1 \
  --request-timeout 15 \
  --generation-database none \
  --no-color) ||
  fail "schemathesis found requests the API answers against its document (report above)"

kill -0 "$server_pid" 2>/dev/null || fail "the server died during the run"
echo "check-api: OK (document valid, schemathesis clean)" >&2
