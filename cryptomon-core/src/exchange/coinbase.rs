//! Coinbase Exchange: `GET /products/{id}/ticker` and `GET /products/{id}/stats`, one product
//! a call, a few products at a time under the public limit of 10 requests a second; and for a
//! backfill `GET /products/{id}/candles`, at most 300 candles a call.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::batch::QuoteBatch;
use super::candles::{CandleApi, Row, decimal, integer, read_rows};
use super::decimal::{Decimal, opt};
use super::http_source::{Exchange, Refusal, Request};
use super::rules;
use crate::config::SourceConfig;
use crate::error::Result;
use crate::model::{Pair, Quote, Tick};

/// Coinbase Exchange's public market data for a list of products (`BTC-USD`, the canonical
/// form already).
#[derive(Debug)]
pub(crate) struct Coinbase {
    base_url: String,
    pairs: Vec<Pair>,
}

/// `GET /products/{id}/ticker`. Unknown fields (`trade_id` as number or string, `rfq_volume`,
/// `conversions_volume`) are ignored.
#[derive(Deserialize)]
struct Ticker {
    price: Decimal,
    #[serde(default)]
    bid: Option<Decimal>,
    #[serde(default)]
    ask: Option<Decimal>,
    #[serde(default)]
    volume: Option<Decimal>,
    #[serde(default)]
    time: Option<String>,
}

/// `GET /products/{id}/stats`: only the 24-hour range is taken; `last` and `volume` repeat the
/// ticker's.
#[derive(Deserialize)]
struct Stats {
    #[serde(default)]
    high: Option<Decimal>,
    #[serde(default)]
    low: Option<Decimal>,
}

/// The quote of one product from its ticker and, where it came, its stats.
fn parse_product(
    pair: &Pair,
    ticker: &Value,
    stats: Option<&Value>,
    batch: &mut QuoteBatch,
) -> std::result::Result<Quote, String> {
    let t = Ticker::deserialize(ticker).map_err(|e| format!("ticker: {e}"))?;
    let mut quote = Quote::new(pair.clone(), t.price.0);
    quote.bid = opt(t.bid);
    quote.ask = opt(t.ask);
    quote.volume_24h = opt(t.volume);
    if let Some(time) = t.time {
        match DateTime::parse_from_rfc3339(&time) {
            Ok(at) => quote.exchange_time = Some(at.with_timezone(&Utc)),
            Err(e) => batch.problem(format!("{pair}: ticker time {time:?} ignored: {e}")),
        }
    }
    if let Some(stats) = stats {
        match Stats::deserialize(stats) {
            Ok(s) => {
                quote.high_24h = opt(s.high);
                quote.low_24h = opt(s.low);
            }
            Err(e) => batch.problem(format!("{pair}: stats ignored: {e}")),
        }
    }
    Ok(quote)
}

impl Exchange for Coinbase {
    /// Under the public limit of 10 requests a second (bursts of 15), with room for clock skew.
    const RATE: (u32, Duration) = (8, Duration::from_secs(1));

    /// Four products at once, each asking for its ticker and its stats.
    const CONCURRENCY: usize = 8;

    fn new(config: &SourceConfig) -> std::result::Result<Self, String> {
        rules::no_key_nor_ids(config)?;
        Ok(Coinbase {
            base_url: config.base_url.clone(),
            pairs: rules::listed_pairs(config)?.to_vec(),
        })
    }

    /// Each product's ticker, then its stats.
    fn requests(&self) -> Vec<Request> {
        self.pairs
            .iter()
            .flat_map(|pair| {
                ["ticker", "stats"].map(|endpoint| {
                    Request::to(format!("{}/products/{pair}/{endpoint}", self.base_url))
                })
            })
            .collect()
    }

    /// Coinbase says what went wrong in `message` ("NotFound" for an unknown product).
    fn error(&self, body: &Value) -> Option<Refusal> {
        let message = body.get("message")?.as_str()?;
        Some(Refusal::permanent(message.to_owned()))
    }

    /// A product whose ticker failed is dropped; one whose stats failed lacks its 24-hour
    /// range. The raw answer holds each product's bodies under its pair.
    fn parse(
        &self,
        bodies: Vec<Result<Value>>,
        batch: &mut QuoteBatch,
    ) -> std::result::Result<Value, String> {
        let mut raw = Map::new();
        let mut bodies = bodies.into_iter();
        for pair in &self.pairs {
            let (Some(ticker), Some(stats)) = (bodies.next(), bodies.next()) else {
                break;
            };
            let ticker = match ticker {
                Ok(body) => body,
                Err(e) => {
                    batch.failed(pair, e);
                    continue;
                }
            };
            let stats = match stats {
                Ok(body) => Some(body),
                Err(e) => {
                    batch.problem(format!("{pair}: no 24 h high/low: {}", message_of(&e)));
                    None
                }
            };
            match parse_product(pair, &ticker, stats.as_ref(), batch) {
                Ok(quote) => batch.push(quote),
                Err(why) => batch.problem(format!("{pair}: dropped: {why}")),
            }
            let mut product = Map::new();
            product.insert("ticker".to_owned(), ticker);
            if let Some(stats) = stats {
                product.insert("stats".to_owned(), stats);
            }
            raw.insert(pair.to_string(), Value::Object(product));
        }
        Ok(Value::Object(raw))
    }
}

impl CandleApi for Coinbase {
    const RATE: (u32, Duration) = <Coinbase as Exchange>::RATE;
    /// "Count of aggregations requested exceeds 300" past it.
    const PAGE_MINUTES: Option<i64> = Some(300);

    fn for_candles(config: &SourceConfig) -> std::result::Result<Self, String> {
        <Coinbase as Exchange>::new(config)
    }

    fn candle_pairs(&self) -> Vec<Pair> {
        self.pairs.clone()
    }

    /// `start` and `end` are both included: `end` is the last minute wanted.
    fn candle_request(&self, pair: &Pair, from: Tick, to: Tick) -> Request {
        Request {
            url: format!("{}/products/{pair}/candles", self.base_url),
            query: vec![
                ("granularity", "60".to_owned()),
                ("start", from.to_string()),
                ("end", to.add_secs(-60).to_string()),
            ],
        }
    }

    fn candle_error(&self, body: &Value) -> Option<Refusal> {
        self.error(body)
    }

    /// `[time, low, high, open, close, volume]`, numbers, newest first, gaps not filled.
    fn rows(&self, _pair: &Pair, body: &Value) -> std::result::Result<Vec<Row>, String> {
        read_rows(body, |row| {
            Ok(Row {
                time: integer(row, 0, "time")?,
                close: decimal(row, 4, "close")?,
                volume: Some(decimal(row, 5, "volume")?),
            })
        })
    }
}

fn message_of(e: &crate::Error) -> String {
    match e {
        crate::Error::Source { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(
        ticker: Value,
        stats: Option<Value>,
    ) -> (std::result::Result<Quote, String>, Vec<String>) {
        let mut batch = QuoteBatch::new(&crate::model::SourceName::new("coinbase").unwrap());
        let pair = Pair::new("BTC-USD").unwrap();
        let q = parse_product(&pair, &ticker, stats.as_ref(), &mut batch);
        if let Ok(q) = &q {
            batch.push(q.clone());
        }
        let problems = batch
            .finish(json!({}), Utc::now())
            .map(|f| f.problems)
            .unwrap_or_default();
        (q, problems)
    }

    #[test]
    fn fills_what_ticker_and_stats_give() {
        let (q, problems) = parse(
            json!({"ask":"63212.98","bid":"63212.97","volume":"4916.94797396","trade_id":"1040406588",
                   "price":"63212.97","time":"2026-06-19T16:43:33.016274911Z"}),
            Some(json!({"open":"62605.56","high":"63351.3","low":"62159.76","last":"63212.41"})),
        );
        let q = q.unwrap();
        assert_eq!(
            (q.price, q.bid, q.ask),
            (63212.97, Some(63212.97), Some(63212.98))
        );
        assert_eq!((q.high_24h, q.low_24h), (Some(63351.3), Some(62159.76)));
        assert_eq!(q.volume_24h, Some(4916.94797396));
        assert_eq!(q.quote_volume_24h, None, "coinbase gives no quote volume");
        assert_eq!(
            q.exchange_time
                .unwrap()
                .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
            "2026-06-19T16:43:33.016274911Z"
        );
        assert!(problems.is_empty(), "{problems:?}");
    }

    #[test]
    fn bad_time_is_dropped_not_the_quote() {
        let (q, problems) = parse(json!({"price":"1.5","time":"yesterday"}), None);
        let q = q.unwrap();
        assert_eq!((q.price, q.exchange_time, q.high_24h), (1.5, None, None));
        assert!(problems[0].contains("yesterday"), "{problems:?}");
    }

    #[test]
    fn price_must_be_a_decimal() {
        for ticker in [
            json!({"bid":"1"}),
            json!({"price":null}),
            json!({"price":"abc"}),
        ] {
            assert!(parse(ticker, None).0.is_err());
        }
    }
}
