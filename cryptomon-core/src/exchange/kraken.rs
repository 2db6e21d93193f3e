//! Kraken: one `GET /0/public/Ticker?pair=XBTUSD,ETHUSD` for every configured pair.
//!
//! Kraken names assets its own way (XBT for BTC, XDG for DOGE) and answers under names of its
//! own choosing: `XBTUSD` comes back as `XXBTZUSD` (legacy assets carry an `X`, fiat a `Z`),
//! newer markets as asked (`XBTUSDT`, `SOLUSD`). Each result key is mapped back to the
//! configured pair through every spelling Kraken uses for it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;

use super::batch::QuoteBatch;
use super::decimal::Decimal;
use super::http::{Gate, HttpClient, HttpPolicy, Reply};
use crate::config::{PairSelection, SourceConfig};
use crate::error::{Error, Result};
use crate::model::{Pair, Quote, SourceName, Tick};
use crate::source::{Fetched, Source};

/// Requests a second: Kraken's public limit is per IP, about one a second sustained.
pub(crate) const RATE: (u32, Duration) = (1, Duration::from_secs(1));

/// Kraken's public market data for a list of pairs.
#[derive(Debug)]
pub struct KrakenSource {
    name: SourceName,
    url: String,
    pairs: Vec<Pair>,
    /// `pair=` of the request: Kraken's names, comma-separated.
    request: String,
    /// Every spelling a result key may take, to the configured pair.
    names: HashMap<String, Pair>,
    http: HttpClient,
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

impl KrakenSource {
    /// A source for the entry `config` (kind `kraken`), with its own request rate.
    pub fn new(config: &SourceConfig, policy: &HttpPolicy) -> Result<Self> {
        Self::with_gate(config, policy, Gate::new(RATE.0, RATE.1))
    }

    pub(crate) fn with_gate(
        config: &SourceConfig,
        policy: &HttpPolicy,
        gate: Arc<Gate>,
    ) -> Result<Self> {
        let PairSelection::List(pairs) = &config.pairs else {
            return Err(Error::Config(format!(
                "source {}: kraken needs a list of pairs",
                config.name
            )));
        };
        let mut names = HashMap::new();
        for pair in pairs {
            for name in answer_names(pair) {
                // The first configured pair keeps an ambiguous spelling.
                names.entry(name).or_insert_with(|| pair.clone());
            }
        }
        Ok(KrakenSource {
            name: config.name.clone(),
            url: format!("{}/0/public/Ticker", config.base_url),
            request: pairs.iter().map(request_name).collect::<Vec<_>>().join(","),
            pairs: pairs.clone(),
            names,
            http: HttpClient::new(&config.name, policy, config.max_body_bytes, gate, None)?,
        })
    }

    /// The configured pair a result key stands for.
    fn pair_of(&self, key: &str) -> Option<&Pair> {
        self.names
            .get(key)
            .or_else(|| self.names.get(&key.trim().to_ascii_uppercase()))
    }

    /// Reads a `Ticker` answer: the `error` array first (Kraken reports errors with HTTP 200),
    /// then each market of `result`.
    fn parse(
        &self,
        body: &Value,
        batch: &mut QuoteBatch,
    ) -> std::result::Result<(), (String, bool)> {
        let errors: Vec<&str> = body
            .get("error")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        // Entries starting with W are warnings: the answer is still good.
        let (warnings, errors): (Vec<&str>, Vec<&str>) =
            errors.into_iter().partition(|e| e.starts_with('W'));
        for w in warnings {
            batch.problem(format!("kraken warning: {w}"));
        }
        if !errors.is_empty() {
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
            return Err((message, retryable));
        }
        let Some(result) = body.get("result").and_then(Value::as_object) else {
            return Err((
                "the answer has neither an error nor a result".to_owned(),
                false,
            ));
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
        Ok(())
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

#[async_trait]
impl Source for KrakenSource {
    fn name(&self) -> &SourceName {
        &self.name
    }

    async fn fetch(&self, _tick: Tick) -> Result<Fetched> {
        let deadline = self.http.deadline();
        let query = [("pair", self.request.clone())];
        let reply = self.http.get(&self.url, &query, deadline).await?;
        self.read(&reply, Utc::now())
    }
}

impl KrakenSource {
    /// The fetch made of one answer: its quotes, or why it gives none.
    pub(crate) fn read(&self, reply: &Reply, fetched_at: DateTime<Utc>) -> Result<Fetched> {
        let body = reply
            .json()
            .map_err(|why| self.http.error(format!("GET {}: {why}", self.url), false))?;
        let mut batch = QuoteBatch::new(&self.name);
        if let Err((message, retryable)) = self.parse(&body, &mut batch) {
            return Err(self.http.error(
                format!("GET {}: HTTP {}: {message}", self.url, reply.status),
                retryable,
            ));
        }
        if !reply.is_success() {
            return Err(self.http.error(
                format!(
                    "GET {}: HTTP {}: {}",
                    self.url,
                    reply.status,
                    super::http::excerpt(&reply.body)
                ),
                false,
            ));
        }
        batch.finish(body, fetched_at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn source(pairs: &[&str]) -> KrakenSource {
        let config = SourceConfig {
            kind: crate::config::ExchangeKind::Kraken,
            name: SourceName::new("kraken").unwrap(),
            pairs: PairSelection::List(pairs.iter().map(|p| Pair::new(p).unwrap()).collect()),
            base_url: "http://127.0.0.1:9".to_owned(),
            timeout_secs: None,
            max_body_bytes: crate::config::DEFAULT_MAX_BODY_BYTES,
            api_key_env: None,
            ids: Default::default(),
        };
        KrakenSource::new(&config, &HttpPolicy::default()).unwrap()
    }

    fn parse(s: &KrakenSource, body: Value) -> Result<Fetched> {
        let mut batch = QuoteBatch::new(&s.name);
        s.parse(&body, &mut batch)
            .map_err(|(m, r)| s.http.error(m, r))?;
        batch.finish(body, Utc::now())
    }

    fn ticker(last: &str) -> Value {
        json!({"a":["2.1","1","1.000"],"b":["1.9","1","1.000"],"c":[last,"0.5"],
               "v":["10","20"],"p":["2","2"],"t":[5,9],"l":["1.5","1.4"],"h":["2.5","2.6"],"o":"1.8"})
    }

    #[test]
    fn request_names_use_kraken_assets() {
        let s = source(&["BTC-USD", "ETH-USD", "DOGE-USD", "BTC-USDT", "ETH-BTC"]);
        assert_eq!(s.request, "XBTUSD,ETHUSD,XDGUSD,XBTUSDT,ETHXBT");
    }

    #[test]
    fn result_keys_map_back_whatever_their_form() {
        let s = source(&[
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
        let s = source(&["BTC-USD"]);
        let f = parse(&s, json!({"error":[],"result":{"XXBTZUSD":ticker("2.0")}})).unwrap();
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
        let s = source(&["BTC-USD", "ETH-USD", "SOL-USD"]);
        let f = parse(
            &s,
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
        let s = source(&["BTC-USD"]);
        let e = parse(&s, json!({"error":["EQuery:Unknown asset pair"]})).unwrap_err();
        assert!(e.to_string().contains("Unknown asset pair") && e.to_string().contains("XBTUSD"));
        assert!(!e.is_retryable());
        let e = parse(&s, json!({"error":["EGeneral:Too many requests"]})).unwrap_err();
        assert!(e.is_retryable());
        let e = parse(&s, json!({"error":[],"result":{}})).unwrap_err();
        assert!(e.to_string().contains("BTC-USD: missing"), "{e}");
        let f = parse(
            &s,
            json!({"error":["WGeneral:Something"],"result":{"XBTUSD":ticker("1")}}),
        )
        .unwrap();
        assert!(f.problems[0].contains("WGeneral"));
    }

    #[test]
    fn malformed_numbers_drop_the_market() {
        let s = source(&["BTC-USD", "ETH-USD"]);
        let mut bad = ticker("2.0");
        bad["c"] = json!([null, "1"]);
        let f = parse(
            &s,
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
