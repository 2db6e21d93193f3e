#!/usr/bin/env python3
"""Write a deterministic synthetic market history in the cryptomon file-store layout.

raw/source={source}/date={YYYY-MM-DD}/{YYYYMMDDTHHMMSSZ}.json, one object per source per tick,
schema cryptomon.snapshot/v1 (see shared/spec/data-contract.md).

A copy of ../shared/peers/gen_snapshots.py, so the tests that use it (history_duckdb.py) need
nothing outside the repository.
"""
import argparse, json, math, os, random
from datetime import datetime, timedelta, timezone

BASE = {"BTC": 91000.0, "ETH": 3100.0, "SOL": 140.0, "XRP": 0.62, "ADA": 0.41, "DOGE": 0.16,
        "LTC": 82.0, "DOT": 5.4, "AVAX": 27.0, "LINK": 14.2}


def pairs_for(n):
    names = list(BASE)
    out = []
    for i in range(n):
        b = names[i % len(names)]
        q = "USD" if i < len(names) else f"Q{i // len(names)}"
        out.append((f"{b}-{q}", BASE[b] * (1 + 0.01 * (i // len(names)))))
    return out


def fmt(t):
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--sources", type=int, default=3)
    ap.add_argument("--pairs", type=int, default=5)
    ap.add_argument("--minutes", type=int, default=1440 + 120)
    ap.add_argument("--end", default="2026-11-27T12:00:00Z")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--gap-rate", type=float, default=0.01)
    ap.add_argument("--nulls", action="store_true", help="leave optional fields null on the last source")
    ap.add_argument("--stop-early", type=int, default=0, help="the first source stops this many minutes before the end")
    ap.add_argument("--spikes", type=int, default=0, help="series whose volume jumps 4x at the last tick")
    a = ap.parse_args()
    rnd = random.Random(a.seed)
    end = datetime.strptime(a.end, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    sources = ["coinbase", "kraken", "binance", "coingecko", "bitstamp", "okx"][: a.sources]
    pairs = pairs_for(a.pairs)
    # one common market path per pair, each source adds its own small basis
    path = {}
    for p, p0 in pairs:
        x, series = p0, []
        for _ in range(a.minutes):
            x *= math.exp(rnd.gauss(0.0, 0.0009))
            series.append(x)
        path[p] = series
    spiked = set(rnd.sample([(s, p) for s in sources for p, _ in pairs], a.spikes))
    n_files = 0
    for si, s in enumerate(sources):
        basis = {p: 1 + rnd.uniform(-0.0015, 0.0015) for p, _ in pairs}
        vol = {p: rnd.uniform(100, 50000) for p, _ in pairs}
        for m in range(a.minutes):
            tick = end - timedelta(minutes=a.minutes - 1 - m)
            if si == 0 and m >= a.minutes - a.stop_early:
                continue  # this source went quiet
            if m not in (0, a.minutes - 1) and rnd.random() < a.gap_rate:
                continue  # collector missed this minute
            collected = tick + timedelta(milliseconds=rnd.randint(80, 2500))
            quotes = []
            for p, _ in pairs:
                vol[p] *= math.exp(rnd.gauss(0.0, 0.002))
                px = path[p][m] * basis[p] * (1 + rnd.gauss(0, 0.00005))
                half = px * 0.00002
                q = {"pair": p, "price": round(px, 8), "bid": round(px - half, 8), "ask": round(px + half, 8),
                     "volume_24h": round(vol[p], 4),
                     "high_24h": round(px * 1.02, 8), "low_24h": round(px * 0.98, 8),
                     "exchange_time": fmt(collected - timedelta(seconds=1))}
                if m == a.minutes - 1 and (s, p) in spiked:
                    q["volume_24h"] = round(q["volume_24h"] * 4, 4)
                if a.nulls and si == len(sources) - 1:
                    q.update(bid=None, ask=None, high_24h=None, low_24h=None, exchange_time=None)
                quotes.append(q)
            obj = {"schema": "cryptomon.snapshot/v1", "source": s, "tick": fmt(tick),
                   "collected_at": collected.strftime("%Y-%m-%dT%H:%M:%S.") + f"{collected.microsecond // 1000:03d}Z",
                   "quotes": quotes, "raw": {"note": "synthetic"}}
            d = os.path.join(a.dir, "raw", f"source={s}", f"date={tick:%Y-%m-%d}")
            os.makedirs(d, exist_ok=True)
            with open(os.path.join(d, f"{tick:%Y%m%dT%H%M%SZ}.json"), "w") as f:
                json.dump(obj, f, separators=(",", ":"))
            n_files += 1
    print(f"wrote {n_files} snapshots ({len(sources)} sources x {len(pairs)} pairs) to {a.dir}")


if __name__ == "__main__":
    main()
