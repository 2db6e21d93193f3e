#!/usr/bin/env python3
"""Peak memory of the three Lambda functions over a full 24-hour window, on a local S3 (moto).

    scripts/lambda-memory.py [--bin-dir DIR] [--ticks N] [--all-metrics] [SCENARIO ...]

    SCENARIO: `default` (the built-in config: BTC, ETH, SOL on coinbase, kraken, binance,
              coingecko: 12 series) or `binance_all` (cryptomon.toml's commented example: every
              Binance market in one snapshot; BINANCE_ALL_PAIRS active markets, default 2000,
              plus a third as many idle ones in the answer, as Binance's answer has). Default:
              both.
    --bin-dir DIR  where the collector, transformer and api binaries are (default
              $CARGO_TARGET_DIR/profiling, from `cargo build --profile profiling -p
              cryptomon-lambda --bins`)
    --ticks N      warm invocations of the collector and the transformer (default 10)
    --all-metrics  after the few API requests, ask the api for every /api/metrics/{id} too
                   (fills its view memo: the API's worst case)

Each function runs as one process on a local Lambda Runtime API (scripts/lambda-startup.py's
`Function`), so its first invocation is a cold start and the next ones are a warm container's.
"cold" is the peak RSS (VmHWM) after the first invocation; the high-water mark is then reset
(/proc/PID/clear_refs), and "warm" is the peak over the invocations after it. A container
needs the larger of the two. Per scenario:

1. collector: a local server plays the exchanges (each source's `base_url` points at it;
   prices walk at random), and the collector collects N + 1 ticks into the prefix `capture/`.
2. A full window is written to the prefix `p/`: 1,440 ticks (24 h, ending N + 1 minutes
   before now) of each source's snapshot. Each is the collector's own snapshot from step 1 (its
   quotes and the exchange's raw answer, which the snapshot keeps) with the tick, the
   collection time and the prices changed: the same sizes and layout as the real thing,
   written in seconds instead of a day.
3. transformer: the first invocation (`{}`) finds no window state and rebuilds from the 24 h of
   raw snapshots; then N incremental invocations, each after the next tick's snapshots were
   written (the collector's output as the event, as the state machine passes it). Then a new
   process takes one more tick: a cold start that reads the stored window state.
4. api: /api/summary (cold), /api/health, /api/metrics, /api/candles of three series,
   /api/metrics/{id} of six metrics; with --all-metrics every metric id after that.

S3 is a moto server: the one named by AWS_ENDPOINT_URL, or one this script starts with
scripts/moto.sh and stops at the end. Needs `pip install 'moto[server]' boto3`. Prints one line per
invocation and a table of the peaks.
"""

import argparse
import importlib.util
import json
import math
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
spec = importlib.util.spec_from_file_location("lambda_startup", os.path.join(HERE, "lambda-startup.py"))
lambda_startup = importlib.util.module_from_spec(spec)
spec.loader.exec_module(lambda_startup)

WINDOW_TICKS = 1440
BASES = {"BTC": 91000.0, "ETH": 3100.0, "SOL": 140.0}
COINGECKO_IDS = {"BTC": "bitcoin", "ETH": "ethereum", "SOL": "solana"}
KRAKEN_NAMES = {"XBTUSD": "XXBTZUSD", "ETHUSD": "XETHZUSD", "SOLUSD": "SOLUSD"}


# ---- the exchanges ----------------------------------------------------------------------------


class Market:
    """Prices that walk at random, one per market, moved on every answer."""

    def __init__(self, bases, seed=1):
        self.rnd = random.Random(seed)
        self.px = dict(bases)
        self.lock = threading.Lock()

    def step(self):
        with self.lock:
            for k in self.px:
                self.px[k] *= math.exp(self.rnd.gauss(0.0, 0.0009))
            return dict(self.px)


def binance_ticker(symbol, px, idle=False):
    """One market of Binance's `ticker/24hr`, FULL form, as Binance writes it (strings)."""
    f = (lambda x: "0.00000000") if idle else (lambda x: f"{x:.8f}")
    now = int(time.time() * 1000)
    return {
        "symbol": symbol, "priceChange": f(px * 0.01), "priceChangePercent": "1.000",
        "weightedAvgPrice": f(px), "prevClosePrice": f(px * 0.99), "lastPrice": f(px),
        "lastQty": f(1.5), "bidPrice": f(px * 0.99998), "bidQty": f(12.0),
        "askPrice": f(px * 1.00002), "askQty": f(9.0), "openPrice": f(px * 0.99),
        "highPrice": f(px * 1.02), "lowPrice": f(px * 0.98), "volume": f(84213.5),
        "quoteVolume": f(84213.5 * px), "openTime": now - 86400000, "closeTime": now,
        "firstId": 0 if idle else 3829412, "lastId": -1 if idle else 3912412,
        "count": 0 if idle else 83001,
    }


def exchange_server(all_pairs):
    """A local HTTP server answering as the four exchanges do for the requests cryptomon makes."""
    market = Market(BASES)
    bases_all = {f"C{i:04d}": 1.0 + (i % 97) for i in range(all_pairs)}
    market_all = Market(bases_all, seed=2)
    idle_symbols = [f"D{i:04d}USDT" for i in range(all_pairs // 3)]

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def answer(self, obj):
            body = json.dumps(obj, separators=(",", ":")).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            url = urllib.parse.urlsplit(self.path)
            q = urllib.parse.parse_qs(url.query)
            parts = url.path.strip("/").split("/")
            if parts[0] == "products" and len(parts) == 3:  # coinbase
                px = market.step()[parts[1].split("-")[0]]
                if parts[2] == "ticker":
                    return self.answer({
                        "ask": f"{px * 1.00001:.2f}", "bid": f"{px * 0.99999:.2f}",
                        "volume": "4916.94797396", "trade_id": 1040406588, "price": f"{px:.2f}",
                        "size": "0.00782662", "time": datetime.now(timezone.utc).isoformat(),
                        "rfq_volume": "31.625279"})
                return self.answer({
                    "open": f"{px * 0.99:.2f}", "high": f"{px * 1.02:.2f}",
                    "low": f"{px * 0.98:.2f}", "last": f"{px:.2f}", "volume": "4918.33722403",
                    "volume_30day": "269980.64976703", "rfq_volume_24hour": "31.625279",
                    "rfq_volume_30day": "2310.097200"})
            if url.path == "/0/public/Ticker":  # kraken
                pxs = market.step()
                result = {}
                for name in q["pair"][0].split(","):
                    base = "BTC" if name.startswith("XBT") else name[:-3]
                    px = pxs[base]
                    result[KRAKEN_NAMES.get(name, name)] = {
                        "a": [f"{px * 1.00001:.5f}", "1", "1.000"],
                        "b": [f"{px * 0.99999:.5f}", "1", "1.000"],
                        "c": [f"{px:.5f}", "0.00067643"], "v": ["4083.67001100", "4412.73601799"],
                        "p": [f"{px:.5f}", f"{px:.5f}"], "t": [34619, 38907],
                        "l": [f"{px * 0.98:.5f}", f"{px * 0.98:.5f}"],
                        "h": [f"{px * 1.02:.5f}", f"{px * 1.02:.5f}"], "o": f"{px * 0.99:.5f}"}
                return self.answer({"error": [], "result": result})
            if url.path == "/api/v3/ticker/24hr":  # binance
                if "symbols" in q:
                    pxs = market.step()
                    symbols = json.loads(q["symbols"][0])
                    return self.answer([binance_ticker(s, pxs[s[:-4]]) for s in symbols])
                pxs = market_all.step()
                return self.answer(
                    [binance_ticker(f"{b}USDT", px) for b, px in pxs.items()]
                    + [binance_ticker(s, 0.0, idle=True) for s in idle_symbols])
            if url.path == "/simple/price":  # coingecko
                pxs = market.step()
                ids = {v: k for k, v in COINGECKO_IDS.items()}
                return self.answer({
                    cid: {"usd": pxs[ids[cid]], "usd_24h_vol": 31260929299.5,
                          "last_updated_at": int(time.time())}
                    for cid in q["ids"][0].split(",")})
            self.send_error(404)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def config_for(scenario, base):
    """The scenario's config as TOML text, every source pointed at the local exchanges."""
    if scenario == "default":
        return "\n".join(
            f'[[sources]]\nkind = "{kind}"\npairs = {json.dumps(pairs)}\nbase_url = "{base}"\n'
            for kind, pairs in [
                ("coinbase", ["BTC-USD", "ETH-USD", "SOL-USD"]),
                ("kraken", ["BTC-USD", "ETH-USD", "SOL-USD"]),
                ("binance", ["BTC-USDT", "ETH-USDT", "SOL-USDT"]),
                ("coingecko", ["BTC-USD", "ETH-USD", "SOL-USD"]),
            ])
    return f'[[sources]]\nkind = "binance"\nname = "binance_all"\npairs = "all"\nbase_url = "{base}"\n'


# ---- S3 (moto) --------------------------------------------------------------------------------


class S3:
    """boto3 on moto (moto refuses unsigned reads)."""

    def __init__(self, endpoint):
        import boto3

        self.client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                                   aws_access_key_id="test", aws_secret_access_key="test")

    def create_bucket(self, bucket):
        self.client.create_bucket(Bucket=bucket)

    def put(self, bucket, key, body):
        self.client.put_object(Bucket=bucket, Key=key, Body=body)

    def get(self, bucket, key):
        return self.client.get_object(Bucket=bucket, Key=key)["Body"].read()


# ---- snapshots --------------------------------------------------------------------------------


def fmt_tick(t):
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def raw_key(source, t):
    return f"raw/source={source}/date={t:%Y-%m-%d}/{t:%Y%m%dT%H%M%SZ}.json"


class Template:
    """A snapshot the collector wrote, re-issued for other ticks with moved prices. The raw
    answer is kept as it was (serialised once): the transform does not read it."""

    MARK = '"__raw__"'

    def __init__(self, snapshot, seed):
        self.source = snapshot["source"]
        self.raw = json.dumps(snapshot["raw"], separators=(",", ":"))
        self.quotes = snapshot["quotes"]
        self.rnd = random.Random(seed)
        self.walk = [1.0] * len(self.quotes)

    def body(self, t):
        quotes = []
        for i, q in enumerate(self.quotes):
            self.walk[i] *= math.exp(self.rnd.gauss(0.0, 0.0009))
            q = dict(q)
            for field in ("price", "bid", "ask", "high_24h", "low_24h"):
                if q.get(field) is not None:
                    q[field] = float(f"{q[field] * self.walk[i]:.10g}")
            if q.get("volume_24h") is not None:
                q["volume_24h"] = float(f"{q['volume_24h'] * (0.9 + 0.2 * self.rnd.random()):.10g}")
            quotes.append(q)
        collected = t + timedelta(milliseconds=self.rnd.randint(80, 2500))
        snap = {
            "schema": "cryptomon.snapshot/v1", "source": self.source, "tick": fmt_tick(t),
            "collected_at": collected.strftime("%Y-%m-%dT%H:%M:%S.") + f"{collected.microsecond // 1000:03d}Z",
            "quotes": quotes, "raw": "__raw__",
        }
        return json.dumps(snap, separators=(",", ":")).replace(self.MARK, self.raw, 1).encode()


# ---- the measurement --------------------------------------------------------------------------


def api_event(path, query=""):
    with open(os.path.join(ROOT, "cryptomon-lambda/tests/events/apigw-v2-summary.json")) as f:
        event = json.load(f)
    event["rawPath"] = path
    event["rawQueryString"] = query
    event["requestContext"]["http"]["path"] = path
    event["pathParameters"]["proxy"] = path.lstrip("/")
    if query:
        event["queryStringParameters"] = dict(urllib.parse.parse_qsl(query))
    return event


def answer_of(fn, event, timeout, what):
    elapsed, kind, body = fn.invoke(event, timeout=timeout)
    if kind != "response":
        fn.stop()
        sys.exit(f"{what} failed: {body.decode(errors='replace')[:2000]}\n{fn.tail()}")
    return elapsed, json.loads(body)


def log(line):
    print(line, flush=True)


def scenario_run(name, args, s3, exchanges_url):
    bucket = f"memory-{name.replace('_', '-')}-{os.getpid()}"
    s3.create_bucket(bucket)
    config = config_for(name, exchanges_url)
    env = {"CRYPTOMON_BUCKET": bucket, "CRYPTOMON_CONFIG": config, "MALLOC_ARENA_MAX": "1",
           "RUST_LOG": "info"}
    rows = []
    now = datetime.now(timezone.utc).replace(second=0, microsecond=0)
    ticks = args.ticks

    # 1. collector, into capture/: cold, then `ticks` warm invocations.
    log(f"== {name}: collector, {ticks + 1} ticks into s3://{bucket}/capture/")
    fn = lambda_startup.Function(os.path.join(args.bin_dir, "collector"),
                                 env={**env, "CRYPTOMON_PREFIX": "capture"})
    peaks = []
    for i in range(ticks + 1):
        t = now - timedelta(minutes=ticks - i)
        elapsed, out = answer_of(fn, {"tick": fmt_tick(t)}, 60, "collector")
        if out.get("failed"):
            sys.exit(f"collector: sources failed: {out['failed']}\n{fn.tail()}")
        peaks.append(fn.peak_rss_mb())
        if i == 0:
            fn.reset_peak()
        log(f"   tick {i + 1}: {elapsed * 1000:.0f} ms, {out['written']} written, RSS {fn.rss_mb():.1f} MB")
    last_keys = out["keys"]
    fn.stop()
    rows.append((name, "collector", peaks[0], peaks[-1], f"{ticks} warm ticks"))

    # 2. the window: 1,440 ticks ending `ticks + 1` minutes ago, from the collector's snapshots.
    templates = [Template(json.loads(s3.get(bucket, f"capture/{k}")), seed=i)
                 for i, k in enumerate(last_keys)]
    end = now - timedelta(minutes=ticks + 1)
    start = end - timedelta(minutes=WINDOW_TICKS - 1)
    t0 = time.time()
    written = 0
    for m in range(WINDOW_TICKS):
        t = start + timedelta(minutes=m)
        for tpl in templates:
            body = tpl.body(t)
            s3.put(bucket, f"p/{raw_key(tpl.source, t)}", body)
            written += len(body)
    log(f"== {name}: window written: {WINDOW_TICKS} ticks x {len(templates)} sources, "
        f"{written / 1e6:.0f} MB, {sum(len(t.quotes) for t in templates)} series, "
        f"in {time.time() - t0:.0f} s")

    # 3. transformer: cold rebuild, then `ticks` incremental invocations.
    log(f"== {name}: transformer")
    fn = lambda_startup.Function(os.path.join(args.bin_dir, "transformer"),
                                 env={**env, "CRYPTOMON_PREFIX": "p"})
    elapsed, out = answer_of(fn, {}, 900, "transformer (cold)")
    cold = fn.peak_rss_mb()
    log(f"   cold: {elapsed * 1000:.0f} ms, read {out.get('read')}, series {out.get('series')}, "
        f"samples {out.get('samples')}; peak RSS {cold:.1f} MB, RSS now {fn.rss_mb():.1f} MB")
    fn.reset_peak()
    for i in range(ticks):
        t = end + timedelta(minutes=i + 1)
        keys = []
        for tpl in templates:
            key = raw_key(tpl.source, t)
            s3.put(bucket, f"p/{key}", tpl.body(t))
            keys.append(key)
        event = {"tick": fmt_tick(t), "keys": keys, "written": len(keys), "failed": []}
        elapsed, out = answer_of(fn, event, 120, "transformer (warm)")
        log(f"   tick {i + 1}: {elapsed * 1000:.0f} ms, read {out.get('read')}, "
            f"writes {out.get('writes')}; RSS {fn.rss_mb():.1f} MB, peak {fn.peak_rss_mb():.1f} MB")
    warm = fn.peak_rss_mb()
    fn.stop()
    rows.append((name, "transformer", cold, warm, f"rebuild from 24 h of raw, then {ticks} ticks"))
    # A new container on the stored state (what most cold starts are): it reads the window
    # state (base and head) instead of the raw snapshots.
    fn = lambda_startup.Function(os.path.join(args.bin_dir, "transformer"),
                                 env={**env, "CRYPTOMON_PREFIX": "p"})
    t = end + timedelta(minutes=ticks + 1)
    keys = []
    for tpl in templates:
        key = raw_key(tpl.source, t)
        s3.put(bucket, f"p/{key}", tpl.body(t))
        keys.append(key)
    event = {"tick": fmt_tick(t), "keys": keys, "written": len(keys), "failed": []}
    elapsed, out = answer_of(fn, event, 120, "transformer (cold, stored state)")
    cold = fn.peak_rss_mb()
    log(f"   new process on the stored state: {elapsed * 1000:.0f} ms, read {out.get('read')}; "
        f"peak RSS {cold:.1f} MB")
    fn.stop()
    rows.append((name, "transformer", cold, None, "cold start on the stored window state"))

    # 4. api.
    log(f"== {name}: api")
    fn = lambda_startup.Function(os.path.join(args.bin_dir, "api"),
                                 env={"CRYPTOMON_BUCKET": bucket, "CRYPTOMON_PREFIX": "p",
                                      "MALLOC_ARENA_MAX": "1", "RUST_LOG": "info"})
    elapsed, summary = answer_of(fn, api_event("/api/summary"), 60, "api /api/summary")
    cold = fn.peak_rss_mb()
    fn.reset_peak()
    log(f"   /api/summary (cold): {elapsed * 1000:.0f} ms, status {summary['statusCode']}, "
        f"{len(summary.get('body') or '')} bytes; peak RSS {cold:.1f} MB")
    series = json.loads(summary["body"])["series"]
    for path in ("/api/health", "/api/metrics"):
        elapsed, out = answer_of(fn, api_event(path), 60, f"api {path}")
        log(f"   {path}: {elapsed * 1000:.0f} ms, status {out['statusCode']}; RSS {fn.rss_mb():.1f} MB")
    ids = [m["id"] for m in json.loads(out["body"])]
    requests = [("/api/candles", urllib.parse.urlencode(
        {"source": s["source"], "pair": s["pair"], "interval": "5m"})) for s in series[:3]]
    requests += [(f"/api/metrics/{mid}", "") for mid in ids[:3] + ids[-3:]]
    for path, query in requests:
        elapsed, out = answer_of(fn, api_event(path, query), 60, f"api {path}")
        log(f"   {path}{'?' + query if query else ''}: {elapsed * 1000:.0f} ms, status "
            f"{out['statusCode']}; RSS {fn.rss_mb():.1f} MB")
    few = fn.peak_rss_mb()
    rows.append((name, "api", cold, few, f"{len(requests) + 2} more requests"))
    if args.all_metrics:
        t0 = time.time()
        for mid in ids:
            answer_of(fn, api_event(f"/api/metrics/{mid}"), 60, f"api /api/metrics/{mid}")
        log(f"   /api/metrics/{{id}} for all {len(ids)} ids: {time.time() - t0:.0f} s; "
            f"RSS {fn.rss_mb():.1f} MB, peak {fn.peak_rss_mb():.1f} MB")
        rows.append((name, "api", cold, fn.peak_rss_mb(), f"and every /api/metrics/{{id}} ({len(ids)})"))
    fn.stop()
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    ap.add_argument("--bin-dir", default=os.path.join(target, "profiling"))
    ap.add_argument("--ticks", type=int, default=10)
    ap.add_argument("--all-metrics", action="store_true")
    ap.add_argument("scenarios", nargs="*", default=["default", "binance_all"])
    args = ap.parse_args()
    for s in args.scenarios:
        if s not in ("default", "binance_all"):
            sys.exit(f"unknown scenario {s!r}: default or binance_all")
    for b in ("collector", "transformer", "api"):
        if not os.access(os.path.join(args.bin_dir, b), os.X_OK):
            sys.exit(f"no {b} in {args.bin_dir}: cargo build --profile profiling -p cryptomon-lambda --bins")

    started_moto = False
    if not os.environ.get("AWS_ENDPOINT_URL"):
        # Its own directory (PID file, log, and the objects moto spills to disk), so stopping
        # it never stops another moto of the same user, and nothing stays behind.
        moto_dir = tempfile.mkdtemp(prefix="cryptomon-memory-moto-")
        moto_env = {**os.environ, "TMPDIR": moto_dir, "MOTO_PIDFILE": f"{moto_dir}/moto.pid"}
        out = subprocess.run([os.path.join(HERE, "moto.sh"), "start"], capture_output=True,
                             text=True, check=True, env=moto_env).stdout
        os.environ["AWS_ENDPOINT_URL"] = out.split("=", 1)[1].strip()
        started_moto = True
    os.environ.setdefault("AWS_REGION", "us-east-1")
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "test")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "test")
    s3 = S3(os.environ["AWS_ENDPOINT_URL"])
    exchanges = exchange_server(int(os.environ.get("BINANCE_ALL_PAIRS", "2000")))
    rows = []
    try:
        for s in args.scenarios:
            rows += scenario_run(s, args, s3, f"http://127.0.0.1:{exchanges.server_port}")
    finally:
        if started_moto:
            subprocess.run([os.path.join(HERE, "moto.sh"), "stop"], check=False, env=moto_env)
            shutil.rmtree(moto_dir, ignore_errors=True)
    print("\n| config | function | cold: peak RSS of the first invocation (MiB) | warm: peak RSS of the next ones (MiB) | |")
    print("|---|---|---:|---:|---|")
    for name, function, cold, warm, what in rows:
        warm = "" if warm is None else f"{warm:.1f}"
        print(f"| {name} | {function} | {cold:.1f} | {warm} | {what} |")


if __name__ == "__main__":
    main()
