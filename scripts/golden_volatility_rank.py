#!/usr/bin/env python3
"""Adds `volatility_rank` to the golden expected summary, computed from the golden raw input.

golden_volatility_rank.py [GOLDEN_DIR]  (default tests/data/golden/small)

Independent of cryptomon's code: it reads `raw.tsv.gz`, keeps the valid snapshots, the later
`collected_at` winning a (source, pair, tick), recomputes each series' `volatility_pct` over the
24 h window, checks it against the expected file's (1e-9 relative), and ranks it: the share of
series with a volatility whose volatility is at most this one's. Run once, when the field was
added; it rewrites `expected/summary.json` in place, keeping its layout.
"""
import datetime
import gzip
import json
import math
import statistics
import sys


def ts(text):
    return int(datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())


def samples(raw_path):
    """{(source, pair): {tick: (collected_at, price)}} of the valid snapshots."""
    series = {}
    with gzip.open(raw_path, "rt") as f:
        for line in f:
            key, _, body = line.rstrip("\n").partition("\t")
            try:
                snap = json.loads(body)
                if snap["schema"] != "cryptomon.snapshot/v1" or not snap["quotes"]:
                    raise ValueError("not a snapshot")
                if f"source={snap['source']}/" not in key:
                    raise ValueError("source differs from the key's")
                tick, collected = ts(snap["tick"]), snap["collected_at"]
                quotes = [(q["pair"], float(q["price"])) for q in snap["quotes"]]
            except (ValueError, KeyError, TypeError) as e:
                print(f"skipped {key}: {e}", file=sys.stderr)
                continue
            for pair, price in quotes:
                slot = series.setdefault((snap["source"], pair), {})
                if tick not in slot or slot[tick][0] < collected:
                    slot[tick] = (collected, price)
    return series


def volatility_pct(points):
    """Sample std of one-minute log returns, annualised, in percent; None below 2 returns."""
    ticks = sorted(points)
    returns = [math.log(points[b][1] / points[a][1]) for a, b in zip(ticks, ticks[1:]) if b - a == 60]
    if len(returns) < 2:
        return None
    return statistics.stdev(returns) * math.sqrt(525600) * 100


def main(golden):
    series = samples(f"{golden}/raw.tsv.gz")
    as_of = max(t for s in series.values() for t in s)
    vol = {}
    for key, points in series.items():
        window = {t: v for t, v in points.items() if as_of - 86400 < t <= as_of}
        if window:
            vol[key] = volatility_pct(window)
    path = f"{golden}/expected/summary.json"
    summary = json.load(open(path))
    assert ts(summary["as_of"]) == as_of, (summary["as_of"], as_of)
    assert len(summary["series"]) == len(vol)
    ranked = [v for v in vol.values() if v is not None]
    for s in summary["series"]:
        mine, want = vol[(s["source"], s["pair"])], s["volatility_pct"]
        assert (mine is None) == (want is None), (s["source"], s["pair"], mine, want)
        if mine is not None:
            assert abs(mine - want) <= 1e-9 * abs(want), (s["source"], s["pair"], mine, want)
        s["volatility_rank"] = None if mine is None else sum(v <= mine for v in ranked) / len(ranked)
        print(s["source"], s["pair"], mine, s["price_rank"], s["volatility_rank"])
    with open(path, "w") as f:
        json.dump(summary, f, indent=1)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "tests/data/golden/small")
