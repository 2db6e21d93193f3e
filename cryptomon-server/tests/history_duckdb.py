#!/usr/bin/env python3
"""History written by `cryptomon transform`, read back by DuckDB as docs/querying.md says.

    history_duckdb.py --cryptomon BIN --work DIR

`history_duckdb.rs` runs it with the binary cargo built. It writes a market of two sources x
three pairs from 2026-11-27T00:00Z to 2026-11-28T00:30Z (scripts/gen_snapshots.py), feeds it to a
file store a tick at a time around midnight with a `cryptomon transform` after each, and checks:

- the closed day's file appears on the first run past midnight, is never rewritten, and the open
  day gets none;
- its Parquet schema (column order and types, `date` only in the path);
- one row per (source, pair, tick), and exactly the raw snapshots' samples of the day, value for
  value (a series without volume reads as null);
- every DuckDB block of docs/querying.md, run verbatim: the hourly closes equal the API's `1h`
  candle closes (`cryptomon candles`), the volatility ranking equals one computed from the raw
  snapshots.

Exits non-zero with the first failed check.
"""
import argparse
import hashlib
import json
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import duckdb

REPO = Path(__file__).resolve().parents[2]
DAY = "2026-11-27"
NEXT_DAY = "2026-11-28"
END = "2026-11-28T00:30:00Z"
MINUTES = 1440 + 31
SOURCES, PAIRS = 2, 3
# The generator's sources and pairs at these counts.
NO_VOLUME = ("kraken", "ETH-USD")
# Ticks up to here go in at once; each later one is taken in by its own transform.
TICK_BY_TICK_FROM = "2026-11-27T23:55:00Z"
TICK_BY_TICK_TO = "2026-11-28T00:05:00Z"
HISTORY_FILE = f"history/date={DAY}/samples.parquet"
# (name, Parquet physical type, what the logical type must say)
SCHEMA = [
    ("source", "BYTE_ARRAY", "String"),
    ("pair", "BYTE_ARRAY", "String"),
    ("tick", "INT64", "TimestampType(isAdjustedToUTC=1, unit=TimeUnit(MILLIS="),
    ("price", "DOUBLE", None),
    ("volume", "DOUBLE", None),
    ("origin", "BYTE_ARRAY", "String"),
    ("collected_at", "INT64", "TimestampType(isAdjustedToUTC=1, unit=TimeUnit(MILLIS="),
]
REL = 1e-12


class Failed(Exception):
    pass


def check(ok, what):
    if not ok:
        raise Failed(what)


def parse_time(text):
    text = text.replace("Z", "+00:00")
    return datetime.fromisoformat(text).astimezone(timezone.utc)


def close(a, b):
    return a == b or (a is not None and b is not None and abs(a - b) <= REL * max(abs(a), abs(b)))


def generate(work):
    """The generator's snapshots, keyed by tick, with one series' volume taken away."""
    gen = work / "gen"
    subprocess.run(
        [sys.executable, REPO / "scripts/gen_snapshots.py", "--dir", gen,
         "--sources", str(SOURCES), "--pairs", str(PAIRS), "--minutes", str(MINUTES),
         "--end", END],
        check=True, stdout=subprocess.DEVNULL,
    )
    by_tick = {}
    for path in sorted(gen.glob("raw/source=*/date=*/*.json")):
        snapshot = json.loads(path.read_text())
        if snapshot["source"] == NO_VOLUME[0]:
            for quote in snapshot["quotes"]:
                if quote["pair"] == NO_VOLUME[1]:
                    quote["volume_24h"] = None
            path.write_text(json.dumps(snapshot, separators=(",", ":")))
        by_tick.setdefault(snapshot["tick"], []).append((path.relative_to(gen), path, snapshot))
    return by_tick


def samples_of(snapshots, day):
    """{(source, pair, tick): (price, volume, collected_at)} of the snapshots' ticks on `day`."""
    out = {}
    for _, _, s in snapshots:
        if not s["tick"].startswith(day):
            continue
        for q in s["quotes"]:
            key = (s["source"], q["pair"], parse_time(s["tick"]))
            check(key not in out, f"the generator wrote {key} twice")
            out[key] = (q["price"], q["volume_24h"], parse_time(s["collected_at"]))
    return out


def transform(binary, store):
    run = subprocess.run([binary, "transform", "--store", store], capture_output=True, text=True)
    check(run.returncode == 0, f"cryptomon transform failed:\n{run.stdout}{run.stderr}")


def history_files(store):
    return sorted(str(p.relative_to(store)) for p in store.glob("history/**/*") if p.is_file())


def feed(binary, store, by_tick):
    """Takes the ticks into the store: all before TICK_BY_TICK_FROM at once, then one a run."""
    ticks = sorted(by_tick)

    def put(tick):
        for rel, path, _ in by_tick[tick]:
            (store / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, store / rel)

    for tick in (t for t in ticks if t < TICK_BY_TICK_FROM):
        put(tick)
    transform(binary, store)
    written = None
    for tick in (t for t in ticks if TICK_BY_TICK_FROM <= t <= TICK_BY_TICK_TO):
        put(tick)
        transform(binary, store)
        files = history_files(store)
        if tick < NEXT_DAY:
            check(files == [], f"as of {tick}, {DAY} is open, yet history holds {files}")
        else:
            check(files == [HISTORY_FILE],
                  f"as of {tick}, past midnight, history holds {files}, not {HISTORY_FILE}")
            digest = hashlib.sha256((store / HISTORY_FILE).read_bytes()).hexdigest()
            check(written in (None, digest), f"{HISTORY_FILE} was rewritten as of {tick}")
            written = digest
    for tick in (t for t in ticks if t > TICK_BY_TICK_TO):
        put(tick)
    transform(binary, store)
    check(history_files(store) == [HISTORY_FILE], f"history holds {history_files(store)}")
    digest = hashlib.sha256((store / HISTORY_FILE).read_bytes()).hexdigest()
    check(digest == written, f"{HISTORY_FILE} was rewritten by the last transform")
    print(f"history: {HISTORY_FILE} written once, on the first run past midnight")


def doc_blocks():
    """The ```sql blocks of docs/querying.md as (tag, text); every block must be tagged."""
    text = (REPO / "docs/querying.md").read_text()
    blocks = re.findall(r"^```sql([^\n]*)\n(.*?)^```", text, flags=re.S | re.M)
    known = {"duckdb-setup", "duckdb-s3", "duckdb", "athena"}
    for tag, _ in blocks:
        check(tag.strip() in known, f"docs/querying.md: a ```sql block tagged {tag!r}: "
              f"tag it one of {sorted(known)}, so the test knows whether to run it")
    return [(tag.strip(), body) for tag, body in blocks]


def check_schema(con):
    rows = con.execute(
        "SELECT name, type, logical_type, converted_type, repetition_type "
        "FROM parquet_schema(?) WHERE num_children IS NULL ORDER BY column_id",
        [HISTORY_FILE],
    ).fetchall()
    check([r[0] for r in rows] == [c[0] for c in SCHEMA],
          f"the file's columns are {[r[0] for r in rows]}, not {[c[0] for c in SCHEMA]}")
    for (name, physical, logical, converted, _), (_, want_physical, want_logical) in zip(rows, SCHEMA):
        check(physical == want_physical, f"{name} is {physical}, not {want_physical}")
        if want_logical == "String":
            check(converted == "UTF8" or "String" in (logical or ""), f"{name} is not UTF8")
        elif want_logical:
            check(logical and logical.startswith(want_logical) and "MilliSeconds" in logical,
                  f"{name}'s logical type is {logical}, not a UTC timestamp in milliseconds")
    volume = [r for r in rows if r[0] == "volume"][0]
    check(volume[4] == "OPTIONAL", "volume must be nullable")
    names = [r[0] for r in con.execute("DESCRIBE history").fetchall()]
    check(names == [c[0] for c in SCHEMA] + ["date"],
          f"the view's columns are {names}: `date` must come from the path only")
    print("history: schema as the contract says")


def check_rows(con, raw):
    dup = con.execute(
        "SELECT source, pair, tick, count(*) FROM history GROUP BY ALL HAVING count(*) > 1 LIMIT 3"
    ).fetchall()
    check(dup == [], f"more than one row per (source, pair, tick): {dup}")
    rows = con.execute(
        "SELECT source, pair, tick, price, volume, collected_at, origin, \"date\" FROM history"
    ).fetchall()
    check(len(rows) == len(raw), f"{DAY} holds {len(rows)} rows; its raw snapshots hold {len(raw)}")
    ordered = [(r[0], r[1], r[2]) for r in rows]
    check(ordered == sorted(ordered), "rows are not sorted by source, pair, tick")
    for source, pair, tick, price, volume, collected_at, origin, date in rows:
        key = (source, pair, tick)
        check(key in raw, f"{key} is in history but in no raw snapshot of {DAY}")
        want_price, want_volume, want_collected = raw[key]
        check(close(price, want_price), f"{key}: price {price}, raw {want_price}")
        check(close(volume, want_volume), f"{key}: volume {volume}, raw {want_volume}")
        check(collected_at == want_collected,
              f"{key}: collected_at {collected_at}, raw {want_collected}")
        check(origin == "snapshot", f"{key}: origin {origin!r}")
        check(str(date) == DAY, f"{key}: date {date}")
    nulls = {(r[0], r[1]) for r in rows if r[4] is None}
    check(nulls == {NO_VOLUME}, f"series with a null volume: {nulls}, expected {{{NO_VOLUME}}}")
    print(f"history: {len(rows)} rows, one per (source, pair, tick), equal to the raw snapshots")


def candles(binary, store, source, pair, interval):
    run = subprocess.run(
        [binary, "candles", "--store", store, "--source", source, "--pair", pair,
         "--interval", interval],
        capture_output=True, text=True,
    )
    check(run.returncode == 0, f"cryptomon candles failed: {run.stderr}")
    return {parse_time(c["t"]): c for c in json.loads(run.stdout)["candles"]}


def minute_volatility(raw):
    """Percent standard deviation of each series' minute log returns, from the raw samples."""
    by_series = {}
    for (source, pair, tick), (price, _, _) in sorted(raw.items()):
        by_series.setdefault((source, pair), []).append(price)
    return {
        series: 100 * statistics.stdev(math.log(b / a) for a, b in zip(prices, prices[1:]))
        for series, prices in by_series.items()
    }


def check_doc_queries(con, binary, store, raw):
    blocks = doc_blocks()
    setups = [body for tag, body in blocks if tag == "duckdb-setup"]
    queries = [body for tag, body in blocks if tag == "duckdb"]
    check(len(setups) == 1 and len(queries) >= 3, "docs/querying.md lost its DuckDB blocks")
    vol = minute_volatility(raw)
    checked = set()
    for query in queries:
        cursor = con.execute(query)
        columns = [d[0] for d in cursor.description]
        rows = cursor.fetchall()
        check(rows, f"no rows from:\n{query}")
        if columns == ["hour", "close"]:
            # The query's series, from its WHERE clause, and the API's closes of the same hours.
            source = re.search(r"source = '([^']+)'", query).group(1)
            pair = re.search(r"pair = '([^']+)'", query).group(1)
            api = candles(binary, store, source, pair, "1h")
            check(len(rows) == 24, f"{len(rows)} hourly closes of {DAY}, not 24")
            for hour, close_price in rows:
                check(hour in api, f"the API has no 1h candle at {hour}")
                check(close(close_price, api[hour]["c"]),
                      f"{hour}: the query's close {close_price}, the API's {api[hour]['c']}")
            checked.add("hourly closes")
        elif columns[:2] == ["source", "pair"] and "volatility_pct" in columns:
            check(len(rows) == len(vol), f"{len(rows)} series ranked, not {len(vol)}")
            pct = columns.index("volatility_pct")
            ranked = [r[pct] for r in rows]
            check(ranked == sorted(ranked, reverse=True), "not ranked by volatility, highest first")
            check([r[columns.index("volatility_rank")] for r in rows] == list(range(1, len(rows) + 1)),
                  "ranks are not 1..n")
            if "lag(price)" in query:
                for row in rows:
                    want = vol[(row[0], row[1])]
                    check(abs(row[pct] - want) <= 1e-9 * want,
                          f"{row[0]} {row[1]}: volatility {row[pct]}, from raw {want}")
                checked.add("minute volatility")
            else:
                checked.add("hourly volatility")
    check(checked == {"hourly closes", "minute volatility", "hourly volatility"},
          f"docs/querying.md's queries checked against the API and raw: {sorted(checked)}")
    print(f"docs/querying.md: {len(setups) + len(queries)} DuckDB blocks run "
          f"(the S3 set-up needs httpfs from the internet, so not run)")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cryptomon", required=True, type=Path)
    ap.add_argument("--work", required=True, type=Path)
    a = ap.parse_args()
    store = a.work / "store"
    store.mkdir(parents=True)
    by_tick = generate(a.work)
    raw = samples_of([s for ss in by_tick.values() for s in ss], DAY)
    try:
        feed(a.cryptomon, store, by_tick)
        con = duckdb.connect()
        # The doc's set-up reads the store's history/ from the working directory.
        os.chdir(store)
        (setup,) = [body for tag, body in doc_blocks() if tag == "duckdb-setup"]
        con.execute(setup)
        check_schema(con)
        check_rows(con, raw)
        check_doc_queries(con, a.cryptomon, store, raw)
    except Failed as failure:
        print(f"FAILED: {failure}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
