#!/usr/bin/env bash
# End-to-end transform benchmark: cryptomon (full and incremental) against the pandas peer on
# the same generated data, in the same run. Prints wall time, reads, writes, bytes and peak RSS.
#
#   scripts/bench-transform.sh [SOURCES] [PAIRS] [MINUTES] [TICKS]
#     defaults: 3 sources x 100 pairs x 1560 minutes (26 h), 11 incremental ticks
#
# The full transforms (the peer's and cryptomon's) run FULL_RUNS times each (default 3),
# alternating, and their medians are compared.
#
# Incremental ticks are measured three ways: TICKS one-shot `cryptomon transform` processes
# (cold: each reads the window state from the store and lists the window's partitions), then
# TICKS more taken in by one `cryptomon transform --every 1` process (warm: it keeps the state in
# memory between runs, as the server's schedule and a warm Lambda do), then TICKS one-shot
# `cryptomon transform --keys` processes (cold, but told of the tick's keys, as the server and
# the Lambda transformer are: no listing).
#
# Needs: a release build (cargo build --release -p cryptomon-server), python3 with pandas for
# the peer (PEER_PYTHON, default /work/.venv-peers/bin/python; see ../shared/peers/README.md),
# and the peer scripts (PEERS, default ../shared/peers). Data goes to BENCH_DIR (default
# /tmp/cryptomon-bench), never into the repository.
set -euo pipefail
cd "$(dirname "$0")/.."
sources=${1:-3} pairs=${2:-100} minutes=${3:-1560} ticks=${4:-11}
full_runs=${FULL_RUNS:-3}
peers=${PEERS:-../shared/peers}
py=${PEER_PYTHON:-/work/.venv-peers/bin/python}
bin=${CRYPTOMON:-${CARGO_TARGET_DIR:-/var/cache/cryptomon/target}/release/cryptomon}
base=${BENCH_DIR:-/tmp/cryptomon-bench}/s${sources}p${pairs}m${minutes}
end=2026-11-27T12:00:00Z

# Every cryptomon process runs with one malloc arena, as the deployments set it (README, The
# command line; the SAM template): MALLOC_ARENAS=0 leaves glibc's default.
arenas=${MALLOC_ARENAS:-1}
if [ "$arenas" = 0 ]; then cm=(env "$bin"); else cm=(env MALLOC_ARENA_MAX="$arenas" "$bin"); fi
[ -x "$bin" ] || { echo "no release binary at $bin: cargo build --release -p cryptomon-server" >&2; exit 1; }
peak() { awk '/Maximum resident/ {printf "%.0f MB", $6/1024}' "$1"; }
wall() { awk '/Elapsed \(wall/ {print $8}' "$1"; }

if [ ! -d "$base/raw" ]; then
  python3 "$peers/gen_snapshots.py" --dir "$base" --sources "$sources" --pairs "$pairs" \
    --minutes "$minutes" --end "$end" --spikes 2 >&2
fi
objects=$(find "$base/raw" -name '*.json' | wc -l)
size=$(du -sh "$base/raw" | cut -f1)
echo "data: $sources sources x $pairs pairs x $minutes min = $objects objects, $size"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/peer" "$work/cm"
cp -r "$base/raw" "$work/peer/raw"
cp -r "$base/raw" "$work/cm/raw"
sync

# The full transforms run several times each, alternating, and the medians are compared: a
# run of a quarter of a second can meet a slow spell of this machine that the peer's 10-20 s
# average out, and the other way round. Wall time is taken around the whole process (with
# /usr/bin/time's own start, a millisecond or so), to the millisecond.
echo "== full transforms: pandas peer (reference_pandas.py) and cryptomon transform --full, $full_runs runs each, alternating"
for r in $(seq 1 "$full_runs"); do
  t0=$(date +%s.%N)
  /usr/bin/time -v "$py" "$peers/reference_pandas.py" "$work/peer" 2>"$work/peer.time" >"$work/peer.out"
  t1=$(date +%s.%N)
  rm -rf "$work/cm/aggregates"
  t2=$(date +%s.%N)
  /usr/bin/time -v "${cm[@]}" transform --full --store "$work/cm" 2>"$work/cm.time" >"$work/cm.out"
  t3=$(date +%s.%N)
  peer_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", b - a}')
  cm_s=$(awk -v a="$t2" -v b="$t3" 'BEGIN {printf "%.3f", b - a}')
  echo "   run $r: peer $peer_s s, $(peak "$work/peer.time"); cryptomon $cm_s s, $(peak "$work/cm.time"); $(awk -v p="$peer_s" -v c="$cm_s" 'BEGIN {printf "%.1fx", p / c}')"
  echo "$peer_s $cm_s $(peak "$work/peer.time" | cut -d' ' -f1) $(peak "$work/cm.time" | cut -d' ' -f1)" >>"$work/full.runs"
done
tail -1 "$work/peer.out" | sed 's/^/   peer: /'
sed 's/^/   cryptomon: /' "$work/cm.out"
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
peer_wall=$(cut -d' ' -f1 "$work/full.runs" | median)
cm_wall=$(cut -d' ' -f2 "$work/full.runs" | median)
peer_rss=$(cut -d' ' -f3 "$work/full.runs" | sort -n | head -1)
cm_rss=$(cut -d' ' -f4 "$work/full.runs" | sort -n | tail -1)
echo "   median wall: peer $peer_wall s, cryptomon $cm_wall s: $(awk -v p="$peer_wall" -v c="$cm_wall" 'BEGIN {printf "%.1fx", p / c}')"
echo "   peak RSS, cryptomon's largest against the peer's smallest: peer $peer_rss MB, cryptomon $cm_rss MB: $(awk -v p="$peer_rss" -v c="$cm_rss" 'BEGIN {printf "%.2f", c / p}') of the peer's"

echo "== same values?"
python3 scripts/compare_summaries.py "$work/peer/aggregates/summary.json" "$work/cm/aggregates/summary.json"

echo "== cryptomon transform (incremental), $ticks new ticks, one at a time"
next=$(date -u -d "$end + 1 minute" +%Y-%m-%dT%H:%M:%SZ)
for i in $(seq 1 "$ticks"); do
  t=$(date -u -d "$next + $((i - 1)) minutes" +%Y-%m-%dT%H:%M:%SZ)
  python3 "$peers/gen_snapshots.py" --dir "$work/tick" --sources "$sources" --pairs "$pairs" \
    --minutes 1 --end "$t" --seed "$((100 + i))" >/dev/null
  cp -r "$work/tick/raw/." "$work/cm/raw/"
  rm -rf "$work/tick"
  /usr/bin/time -v "${cm[@]}" transform --store "$work/cm" >"$work/inc.out" 2>"$work/inc.time"
  ms=$(grep -oE 'in [0-9.]+ s' "$work/inc.out" | awk '{printf "%.1f", $2*1000}')
  echo "   tick $i: ${ms} ms in the transform, process wall $(wall "$work/inc.time"), peak RSS $(peak "$work/inc.time"); $(sed -n 2p "$work/inc.out" | sed 's/^ *//')"
done | tee "$work/inc.log"
awk '{for (i=1;i<=NF;i++) if ($i=="ms") print $(i-1)}' "$work/inc.log" | sort -n |
  awk '{a[NR]=$1} END {print "   median " a[int((NR+1)/2)] " ms over " NR " ticks"}'

echo "== cryptomon transform --every 1 (incremental, the state kept in memory), $ticks new ticks"
"${cm[@]}" transform --every 1 --store "$work/cm" >"$work/warm.out" 2>/dev/null &
warm_pid=$!
# Until its first run (which reads the state from the store) has printed its report.
until grep -q "in [0-9.]* s" "$work/warm.out" 2>/dev/null; do sleep 0.2; done
for i in $(seq 1 "$ticks"); do
  t=$(date -u -d "$next + $((ticks + i - 1)) minutes" +%Y-%m-%dT%H:%M:%SZ)
  python3 "$peers/gen_snapshots.py" --dir "$work/tick" --sources "$sources" --pairs "$pairs" \
    --minutes 1 --end "$t" --seed "$((500 + i))" >/dev/null
  # Each file renamed into place whole, as a store's writes are: the running transform must
  # never list a half-copied snapshot.
  (cd "$work/tick/raw" && find . -name '*.json') | while read -r f; do
    mkdir -p "$work/cm/raw/$(dirname "$f")"
    cp "$work/tick/raw/$f" "$work/cm/raw/$f.part"
    mv "$work/cm/raw/$f.part" "$work/cm/raw/$f"
  done
  rm -rf "$work/tick"
  # Until the runs have taken in this tick's snapshots.
  until [ "$(awk '/new snapshots/ {for (k = 2; k <= NF; k++) if ($k == "new") n += $(k - 1)}
                 END {print n + 0}' "$work/warm.out")" -ge $((i * sources)) ]; do sleep 0.1; done
done
hwm=$(awk '/VmHWM/ {printf "%.0f MB", $2/1024}' "/proc/$warm_pid/status")
kill -INT "$warm_pid"; wait "$warm_pid" || true
grep -A1 "on the state held in memory" "$work/warm.out" | grep -E "[1-9][0-9]* new snapshots" |
  sed 's/^ *//' | tee "$work/warm.log" | sed 's/^/   /'
grep -oE 'in [0-9.]+ s' "$work/warm.log" | awk '{print $2*1000}' | sort -n |
  awk '{a[NR]=$1} END {printf "   median %.1f ms over %d ticks (min %.1f, max %.1f)\n", a[int((NR+1)/2)], NR, a[1], a[NR]}'
echo "   peak RSS of the process over all its runs: $hwm"

echo "== cryptomon transform --keys (one-shot, told of the tick's keys as serve and the Lambda are), $ticks new ticks"
for i in $(seq 1 "$ticks"); do
  t=$(date -u -d "$next + $((2 * ticks + i - 1)) minutes" +%Y-%m-%dT%H:%M:%SZ)
  python3 "$peers/gen_snapshots.py" --dir "$work/tick" --sources "$sources" --pairs "$pairs" \
    --minutes 1 --end "$t" --seed "$((900 + i))" >/dev/null
  (cd "$work/tick" && find raw -name '*.json') >"$work/tick.keys"
  cp -r "$work/tick/raw/." "$work/cm/raw/"
  rm -rf "$work/tick"
  /usr/bin/time -v "${cm[@]}" transform --keys "$work/tick.keys" --store "$work/cm" >"$work/told.out" 2>"$work/told.time"
  ms=$(grep -oE 'in [0-9.]+ s' "$work/told.out" | awk '{printf "%.1f", $2*1000}')
  echo "   tick $i: ${ms} ms in the transform, process wall $(wall "$work/told.time"), peak RSS $(peak "$work/told.time"); $(sed -n 2p "$work/told.out" | sed 's/^ *//')"
done | tee "$work/told.log"
awk '{for (i=1;i<=NF;i++) if ($i=="ms") print $(i-1)}' "$work/told.log" | sort -n |
  awk '{a[NR]=$1} END {print "   median " a[int((NR+1)/2)] " ms over " NR " ticks"}'
