//! Coinbase Exchange: `GET /products/{id}/ticker` and `GET /products/{id}/stats`, one product
//! a call, a few products at a time under the public limit of 10 requests a second.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde::Deserialize;
use serde_json::{Map, Value};
use tokio::time::Instant;

use super::batch::QuoteBatch;
use super::decimal::{Decimal, opt};
use super::http::{Gate, HttpClient, HttpPolicy, Reply};
use crate::config::{PairSelection, SourceConfig};
use crate::error::{Error, Result};
use crate::model::{Pair, Quote, SourceName, Tick};
use crate::source::{Fetched, Source};

/// Requests a second: under the public limit of 10 (bursts of 15) with room for clock skew.
pub(crate) const RATE: (u32, Duration) = (8, Duration::from_secs(1));

/// Products fetched at once; each needs two requests.
const CONCURRENCY: usize = 4;

/// Coinbase Exchange's public market data for a list of products (`BTC-USD`, the canonical
/// form already).
#[derive(Debug)]
pub struct CoinbaseSource {
    name: SourceName,
    base_url: String,
    pairs: Vec<Pair>,
    http: HttpClient,
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

impl CoinbaseSource {
    /// A source for the entry `config` (kind `coinbase`), with its own request rate.
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
                "source {}: coinbase needs a list of pairs",
                config.name
            )));
        };
        Ok(CoinbaseSource {
            name: config.name.clone(),
            base_url: config.base_url.clone(),
            pairs: pairs.clone(),
            http: HttpClient::new(&config.name, policy, config.max_body_bytes, gate, None)?,
        })
    }

    /// One endpoint of one product as JSON, or an error naming the product.
    async fn get(&self, pair: &Pair, endpoint: &str, deadline: Instant) -> Result<Value> {
        let url = format!("{}/products/{pair}/{endpoint}", self.base_url);
        let reply = self.http.get(&url, &[], deadline).await?;
        self.read_endpoint(&url, &reply)
    }

    /// One endpoint's answer as JSON, or an error naming the product (`url`).
    pub(crate) fn read_endpoint(&self, url: &str, reply: &Reply) -> Result<Value> {
        let json = reply.json();
        if !reply.is_success() {
            // Coinbase says what went wrong in `message` ("NotFound" for an unknown product).
            let message = json
                .ok()
                .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_owned))
                .unwrap_or_else(|| super::http::excerpt(&reply.body));
            return Err(self.http.error(
                format!("GET {url}: HTTP {}: {message}", reply.status),
                false,
            ));
        }
        json.map_err(|why| self.http.error(format!("GET {url}: {why}"), false))
    }

    async fn fetch_product(
        &self,
        pair: &Pair,
        deadline: Instant,
    ) -> (Result<Value>, Result<Value>) {
        futures::join!(
            self.get(pair, "ticker", deadline),
            self.get(pair, "stats", deadline)
        )
    }
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

#[async_trait]
impl Source for CoinbaseSource {
    fn name(&self) -> &SourceName {
        &self.name
    }

    async fn fetch(&self, _tick: Tick) -> Result<Fetched> {
        let deadline = self.http.deadline();
        // By index: a closure over `&Pair` trips the `Send` check of `async_trait` futures.
        let results: Vec<_> = futures::stream::iter(0..self.pairs.len())
            .map(|i| self.fetch_product(&self.pairs[i], deadline))
            .buffered(CONCURRENCY)
            .collect()
            .await;
        self.assemble(results, Utc::now())
    }
}

impl CoinbaseSource {
    /// The fetch made of each product's ticker and stats answers, in the order of the pairs.
    pub(crate) fn assemble(
        &self,
        results: Vec<(Result<Value>, Result<Value>)>,
        fetched_at: DateTime<Utc>,
    ) -> Result<Fetched> {
        let mut batch = QuoteBatch::new(&self.name);
        let mut raw = Map::new();
        let mut first_error: Option<Error> = None;
        for (pair, (ticker, stats)) in self.pairs.iter().zip(results) {
            let mut bodies = Map::new();
            let ticker = match ticker {
                Ok(body) => body,
                Err(e) => {
                    batch.problem(format!("{pair}: dropped: {}", message_of(&e)));
                    first_error.get_or_insert(e);
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
            match parse_product(pair, &ticker, stats.as_ref(), &mut batch) {
                Ok(quote) => batch.push(quote),
                Err(why) => batch.problem(format!("{pair}: dropped: {why}")),
            }
            bodies.insert("ticker".to_owned(), ticker);
            if let Some(stats) = stats {
                bodies.insert("stats".to_owned(), stats);
            }
            raw.insert(pair.to_string(), Value::Object(bodies));
        }
        match batch.finish(Value::Object(raw), fetched_at) {
            // With no product answered, the first failure says why better than a summary.
            Err(_) if first_error.is_some() && self.pairs.len() == 1 => {
                Err(first_error.expect("checked"))
            }
            Err(Error::Source {
                source_name,
                message,
                ..
            }) => Err(Error::Source {
                source_name,
                message,
                retryable: first_error.as_ref().is_some_and(Error::is_retryable),
            }),
            other => other,
        }
    }
}

fn message_of(e: &Error) -> String {
    match e {
        Error::Source { message, .. } => message.clone(),
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
        let mut batch = QuoteBatch::new(&SourceName::new("coinbase").unwrap());
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
