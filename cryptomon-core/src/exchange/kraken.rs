//! Kraken: one `GET /0/public/Ticker?pair=XBTUSD,ETHUSD` for every configured pair; and for a
//! backfill `GET /0/public/OHLC?pair=XBTUSD&interval=1`, which answers with the 720 most recent
//! minutes whatever `since` asks for, the last of them still open.
//!
//! Kraken names assets its own way (XBT for BTC, XDG for DOGE) and answers under names of its
//! own choosing: `XBTUSD` comes back as `XXBTZUSD` (legacy assets carry an `X`, fiat a `Z`),
//! newer markets as asked (`XBTUSDT`, `SOLUSD`). Each result key is mapped back to the
//! configured pair through every spelling Kraken uses for it.

use std::collections::HashMap;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use super::batch::QuoteBatch;
use super::candles::{CandleApi, Row, decimal, integer, read_rows};
use super::decimal::Decimal;
use super::http_source::{Exchange, Refusal, Request, sole_body};
use super::rules;
use crate::config::SourceConfig;
use crate::error::Result;
use crate::model::{Pair, Quote, Tick};

/// Kraken's public market data for a list of pairs.
#[derive(Debug)]
pub(crate) struct Kraken {
    url: String,
    /// `GET /0/public/OHLC`, for a backfill.
    ohlc_url: String,
    pairs: Vec<Pair>,
    /// `pair=` of the request: Kraken's names, comma-separated.
    request: String,
    /// Every spelling a result key may take, to the configured pair.
    names: HashMap<String, Pair>,
}

/// One market of the `Ticker` answer. Arrays of strings; `t` (trade counts, integers), `p`
/// (VWAP) and `o` (today's open) are not used.
#[derive(Deserialize)]
struct Ticker {
    /// Ask `[price, whole lot volume, lot volume]`.
    #[serde(default)]
    a: Option<Vec<Decimal>>,
    /// Bid, as `a`.
    #[serde(default)]
    b: Option<Vec<Decimal>>,
    /// Last trade `[price, lot volume]`.
    c: Vec<Decimal>,
    /// Volume `[today, last 24 hours]`.
    #[serde(default)]
    v: Option<Vec<Decimal>>,
    /// Low `[today, last 24 hours]`.
    #[serde(default)]
    l: Option<Vec<Decimal>>,
    /// High `[today, last 24 hours]`.
    #[serde(default)]
    h: Option<Vec<Decimal>>,
}

/// Kraken's code for an asset in a request (`BTC` is `XBT`, `DOGE` is `XDG`).
pub(crate) fn kraken_asset(asset: &str) -> &str {
    match asset {
        "BTC" => "XBT",
        "DOGE" => "XDG",
        other => other,
    }
}

/// The name of `pair` in a `Ticker` request (`XBTUSD`).
pub(crate) fn request_name(pair: &Pair) -> String {
    format!(
        "{}{}",
        kraken_asset(pair.base()),
        kraken_asset(pair.quote())
    )
}

/// Every name Kraken may answer `pair` under: plain or `X`/`Z`-prefixed on either side, the
/// canonical or Kraken's asset code, with or without a `/`.
pub(crate) fn answer_names(pair: &Pair) -> Vec<String> {
    let sides = |asset: &str| {
        let k = kraken_asset(asset);
        let mut forms = vec![asset.to_owned(), k.to_owned()];
        for prefix in ["X", "Z"] {
            forms.push(format!("{prefix}{k}"));
            forms.push(format!("{prefix}{asset}"));
        }
        forms.dedup();
        forms
    };
    let mut names = Vec::new();
    for base in sides(pair.base()) {
        for quote in sides(pair.quote()) {
            names.push(format!("{base}{quote}"));
            names.push(format!("{base}/{quote}"));
        }
    }
    names
}

impl Kraken {
    /// The configured pair a result key stands for.
    fn pair_of(&self, key: &str) -> Option<&Pair> {
        self.names
            .get(key)
            .or_else(|| self.names.get(&key.trim().to_ascii_uppercase()))
    }
}

/// The quote in a ticker: last price, best bid and ask, and the rolling 24-hour volume, high and
/// low (the second element; the first is "today" since midnight UTC). No time, no quote volume.
fn quote(pair: &Pair, t: &Ticker) -> Option<Quote> {
    let nth = |v: &Option<Vec<Decimal>>, i: usize| v.as_ref().and_then(|v| v.get(i)).map(|d| d.0);
    let mut q = Quote::new(pair.clone(), t.c.first()?.0);
    q.ask = nth(&t.a, 0);
    q.bid = nth(&t.b, 0);
    q.volume_24h = nth(&t.v, 1);
    q.low_24h = nth(&t.l, 1);
    q.high_24h = nth(&t.h, 1);
    Some(q)
}

impl Exchange for Kraken {
    /// Kraken's public limit is per IP, about one call a second sustained.
    const RATE: (u32, Duration) = (1, Duration::from_secs(1));

    fn new(config: &SourceConfig) -> std::result::Result<Self, String> {
        rules::no_key_nor_ids(config)?;
        let pairs = rules::listed_pairs(config)?;
        let mut names = HashMap::new();
        for pair in pairs {
            for name in answer_names(pair) {
                // The first configured pair keeps an ambiguous spelling.
                names.entry(name).or_insert_with(|| pair.clone());
            }
        }
        Ok(Kraken {
            url: format!("{}/0/public/Ticker", config.base_url),
            ohlc_url: format!("{}/0/public/OHLC", config.base_url),
            request: pairs.iter().map(request_name).collect::<Vec<_>>().join(","),
            pairs: pairs.to_vec(),
            names,
        })
    }

    /// One `Ticker` call for every pair.
    fn requests(&self) -> Vec<Request> {
        vec![Request {
            url: self.url.clone(),
            query: vec![("pair", self.request.clone())],
        }]
    }

    /// The `error` array's errors; Kraken reports them with HTTP 200. Entries starting with W
    /// are warnings: the answer is still good.
    fn error(&self, body: &Value) -> Option<Refusal> {
        let errors: Vec<&str> = body
            .get("error")?
            .as_array()?
            .iter()
            .filter_map(Value::as_str)
            .filter(|e| !e.starts_with('W'))
            .collect();
        if errors.is_empty() {
            return None;
        }
        // Throttling and a busy service pass; a bad pair or argument does not.
        let retryable = errors.iter().all(|e| {
            e.starts_with("EGeneral:Too many requests")
                || e.starts_with("EAPI:Rate limit")
                || e.starts_with("EService:")
                || e.starts_with("EGeneral:Temporary")
        });
        let mut message = errors.join(", ");
        if errors.iter().any(|e| e.contains("Unknown asset pair")) {
            message.push_str(&format!(" (asked for {})", self.request));
        }
        Some(Refusal { message, retryable })
    }

    /// The warnings of the `error` array, then each market of `result`.
    fn parse(
        &self,
        bodies: Vec<Result<Value>>,
        batch: &mut QuoteBatch,
    ) -> std::result::Result<Value, String> {
        let body = sole_body(bodies)?;
        let warnings = body.get("error").and_then(Value::as_array);
        for w in warnings.into_iter().flatten().filter_map(Value::as_str) {
            batch.problem(format!("kraken warning: {w}"));
        }
        let Some(result) = body.get("result").and_then(Value::as_object) else {
            return Err("the answer has neither an error nor a result".to_owned());
        };
        for (key, market) in result {
            let Some(pair) = self.pair_of(key) else {
                batch.problem(format!("unexpected market {key:?} in the answer, ignored"));
                continue;
            };
            match Ticker::deserialize(market) {
                Ok(t) => match quote(pair, &t) {
                    Some(q) => batch.push(q),
                    None => batch.problem(format!("{pair} ({key}): dropped: no last price")),
                },
                Err(e) => batch.problem(format!("{pair} ({key}): dropped: {e}")),
            }
        }
        batch.report_missing(&self.pairs);
        Ok(body)
    }
}

impl CandleApi for Kraken {
    const RATE: (u32, Duration) = <Kraken as Exchange>::RATE;
    /// One call answers with all Kraken has: paging would fetch the same minutes again.
    const PAGE_MINUTES: Option<i64> = None;
    const REACH: Option<(u32, &'static str)> = Some((
        720,
        "kraken serves only the 720 most recent one-minute candles",
    ));

    fn for_candles(config: &SourceConfig) -> std::result::Result<Self, String> {
        <Kraken as Exchange>::new(config)
    }

    fn candle_pairs(&self) -> Vec<Pair> {
        self.pairs.clone()
    }

    /// `since` one second before `from`, so the first minute is in whether Kraken reads it as
    /// inclusive or not.
    fn candle_request(&self, pair: &Pair, from: Tick, _to: Tick) -> Request {
        Request {
            url: self.ohlc_url.clone(),
            query: vec![
                ("pair", request_name(pair)),
                ("interval", "1".to_owned()),
                ("since", (from.unix() - 1).to_string()),
            ],
        }
    }

    fn candle_error(&self, body: &Value) -> Option<Refusal> {
        self.error(body)
    }

    /// The market of `result` named as `pair` (beside `last`), `[time, open, high, low, close,
    /// vwap, volume, count]` with strings, without its last row: the minute still open.
    fn rows(&self, pair: &Pair, body: &Value) -> std::result::Result<Vec<Row>, String> {
        let result = body
            .get("result")
            .and_then(Value::as_object)
            .ok_or("the answer has neither an error nor a result")?;
        let (key, market) = result
            .iter()
            .find(|(key, _)| self.pair_of(key) == Some(pair))
            .ok_or_else(|| {
                let keys: Vec<&String> = result.keys().collect();
                format!("no market for {pair} in the result (keys {keys:?})")
            })?;
        let mut rows = read_rows(market, |row| {
            Ok(Row {
                time: integer(row, 0, "time")?,
                close: decimal(row, 4, "close")?,
                volume: Some(decimal(row, 6, "volume")?),
            })
        })
        .map_err(|why| format!("{key}: {why}"))?;
        // Kraken's rows come oldest first: the last is the minute still open.
        let open = rows.iter().map(|r| r.time).max();
        rows.retain(|r| Some(r.time) != open);
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ExchangeKind;
    use crate::exchange::http_source::testing::{entry, read_ok, source};
    use crate::source::Fetched;
    use serde_json::json;

    fn kraken(pairs: &[&str]) -> Kraken {
        Kraken::new(&entry(ExchangeKind::Kraken, Some(pairs))).unwrap()
    }

    fn parse(pairs: &[&str], body: Value) -> Result<Fetched> {
        read_ok(
            &source::<Kraken>(&entry(ExchangeKind::Kraken, Some(pairs))),
            body,
        )
    }

    fn ticker(last: &str) -> Value {
        json!({"a":["2.1","1","1.000"],"b":["1.9","1","1.000"],"c":[last,"0.5"],
               "v":["10","20"],"p":["2","2"],"t":[5,9],"l":["1.5","1.4"],"h":["2.5","2.6"],"o":"1.8"})
    }

    #[test]
    fn request_names_use_kraken_assets() {
        let s = kraken(&["BTC-USD", "ETH-USD", "DOGE-USD", "BTC-USDT", "ETH-BTC"]);
        assert_eq!(s.request, "XBTUSD,ETHUSD,XDGUSD,XBTUSDT,ETHXBT");
    }

    #[test]
    fn result_keys_map_back_whatever_their_form() {
        let s = kraken(&[
            "BTC-USD", "ETH-USD", "DOGE-USD", "BTC-USDT", "SOL-USD", "ETH-BTC",
        ]);
        for (key, pair) in [
            ("XXBTZUSD", "BTC-USD"),
            ("XBTUSD", "BTC-USD"),
            ("XBT/USD", "BTC-USD"),
            ("BTCUSD", "BTC-USD"),
            ("XETHZUSD", "ETH-USD"),
            ("XXDGZUSD", "DOGE-USD"),
            ("XDGUSD", "DOGE-USD"),
            ("XBTUSDT", "BTC-USDT"),
            ("SOLUSD", "SOL-USD"),
            ("XETHXXBT", "ETH-BTC"),
            ("xxbtzusd", "BTC-USD"),
        ] {
            assert_eq!(s.pair_of(key).map(Pair::as_str), Some(pair), "{key}");
        }
        assert_eq!(s.pair_of("XLTCZUSD"), None);
    }

    #[test]
    fn fields_come_from_the_24_hour_side() {
        let pairs: &[&str] = &["BTC-USD"];
        let f = parse(
            pairs,
            json!({"error":[],"result":{"XXBTZUSD":ticker("2.0")}}),
        )
        .unwrap();
        let q = &f.quotes[0];
        assert_eq!(q.pair.as_str(), "BTC-USD");
        assert_eq!((q.price, q.bid, q.ask), (2.0, Some(1.9), Some(2.1)));
        assert_eq!(
            (q.volume_24h, q.low_24h, q.high_24h),
            (Some(20.0), Some(1.4), Some(2.6))
        );
        assert_eq!((q.quote_volume_24h, q.exchange_time), (None, None));
    }

    #[test]
    fn bad_price_dropped_missing_pair_reported_strangers_ignored() {
        let pairs: &[&str] = &["BTC-USD", "ETH-USD", "SOL-USD"];
        let f = parse(
            pairs,
            json!({"error":[],"result":{"XXBTZUSD":ticker("2.0"),"XETHZUSD":ticker("0"),
                                        "XLTCZUSD":ticker("3")}}),
        )
        .unwrap();
        assert_eq!(f.quotes.len(), 1);
        let p = f.problems.join("\n");
        assert!(p.contains("ETH-USD: dropped: price 0"), "{p}");
        assert!(p.contains("SOL-USD: missing from the answer"), "{p}");
        assert!(p.contains("XLTCZUSD"), "{p}");
    }

    #[test]
    fn errors_in_a_200_answer() {
        let pairs: &[&str] = &["BTC-USD"];
        let e = parse(pairs, json!({"error":["EQuery:Unknown asset pair"]})).unwrap_err();
        assert!(e.to_string().contains("Unknown asset pair") && e.to_string().contains("XBTUSD"));
        assert!(!e.is_retryable());
        let e = parse(pairs, json!({"error":["EGeneral:Too many requests"]})).unwrap_err();
        assert!(e.is_retryable());
        let e = parse(pairs, json!({"error":[],"result":{}})).unwrap_err();
        assert!(e.to_string().contains("BTC-USD: missing"), "{e}");
        let f = parse(
            pairs,
            json!({"error":["WGeneral:Something"],"result":{"XBTUSD":ticker("1")}}),
        )
        .unwrap();
        assert!(f.problems[0].contains("WGeneral"));
    }

    #[test]
    fn malformed_numbers_drop_the_market() {
        let pairs: &[&str] = &["BTC-USD", "ETH-USD"];
        let mut bad = ticker("2.0");
        bad["c"] = json!([null, "1"]);
        let f = parse(
            pairs,
            json!({"error":[],"result":{"XXBTZUSD":ticker("2.0"),"XETHZUSD":bad}}),
        )
        .unwrap();
        assert_eq!(f.quotes.len(), 1);
        assert!(
            f.problems[0].starts_with("ETH-USD (XETHZUSD): dropped"),
            "{:?}",
            f.problems
        );
    }
}
