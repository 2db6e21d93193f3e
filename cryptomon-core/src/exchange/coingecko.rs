//! CoinGecko: `GET /simple/price?ids=bitcoin,...&vs_currencies=usd,...` with the 24-hour volume
//! and the update time, pairs mapped to coin ids by the config.
//!
//! CoinGecko is an aggregator: it gives a price, a 24-hour volume in the quote currency and the
//! time of its last update, nothing else. Unknown ids are silently left out of the answer.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;

use super::batch::QuoteBatch;
use super::decimal::Decimal;
use super::http::{Gate, HttpClient, HttpPolicy, Reply, excerpt};
use crate::config::{PairSelection, SourceConfig};
use crate::error::{Error, Result};
use crate::model::{Pair, Quote, SourceName, Tick};
use crate::secrets::Secrets;
use crate::source::{Fetched, Source};

/// Requests per period: keyless callers get 5 to 30 calls a minute per IP; one call a tick plus
/// a retry or two stays far under that.
pub(crate) const RATE: (u32, Duration) = (1, Duration::from_secs(2));

/// The header of a demo key (the public host), and of a pro key (the `pro-api` host).
const DEMO_KEY_HEADER: &str = "x-cg-demo-api-key";
const PRO_KEY_HEADER: &str = "x-cg-pro-api-key";

/// CoinGecko's simple prices for a list of pairs, each with its coin id.
#[derive(Debug)]
pub struct CoingeckoSource {
    name: SourceName,
    url: String,
    /// Pair, coin id, vs currency (lower case).
    pairs: Vec<(Pair, String, String)>,
    http: HttpClient,
}

impl CoingeckoSource {
    /// A source for the entry `config` (kind `coingecko`), with its own request rate. The key,
    /// if the entry names one in `api_key_env`, is read from `secrets` now.
    pub fn new(config: &SourceConfig, policy: &HttpPolicy, secrets: &Secrets) -> Result<Self> {
        Self::with_gate(config, policy, secrets, Gate::new(RATE.0, RATE.1))
    }

    pub(crate) fn with_gate(
        config: &SourceConfig,
        policy: &HttpPolicy,
        secrets: &Secrets,
        gate: Arc<Gate>,
    ) -> Result<Self> {
        let PairSelection::List(list) = &config.pairs else {
            return Err(Error::Config(format!(
                "source {}: coingecko needs a list of pairs",
                config.name
            )));
        };
        let mut pairs = Vec::with_capacity(list.len());
        for pair in list {
            let id = config.ids.get(pair).ok_or_else(|| {
                Error::Config(format!(
                    "source {}: pair {pair:?} has no coin id",
                    config.name
                ))
            })?;
            pairs.push((pair.clone(), id.clone(), pair.quote().to_ascii_lowercase()));
        }
        let key = match &config.api_key_env {
            None => None,
            Some(var) => {
                let key = secrets
                    .get(var)
                    .filter(|k| !k.trim().is_empty())
                    .ok_or_else(|| {
                        Error::Config(format!(
                            "source {}: api_key_env names {var}, which is not set",
                            config.name
                        ))
                    })?;
                let header = if config.base_url.contains("pro-api.coingecko.com") {
                    PRO_KEY_HEADER
                } else {
                    DEMO_KEY_HEADER
                };
                Some((header, key.trim().to_owned()))
            }
        };
        Ok(CoingeckoSource {
            name: config.name.clone(),
            url: format!("{}/simple/price", config.base_url),
            pairs,
            http: HttpClient::new(&config.name, policy, config.max_body_bytes, gate, key)?,
        })
    }

    fn query(&self) -> Vec<(&'static str, String)> {
        let ids: BTreeSet<&str> = self.pairs.iter().map(|(_, id, _)| id.as_str()).collect();
        let vs: BTreeSet<&str> = self.pairs.iter().map(|(_, _, vs)| vs.as_str()).collect();
        vec![
            ("ids", ids.into_iter().collect::<Vec<_>>().join(",")),
            (
                "vs_currencies",
                vs.into_iter().collect::<Vec<_>>().join(","),
            ),
            ("include_24hr_vol", "true".to_owned()),
            ("include_last_updated_at", "true".to_owned()),
            ("precision", "full".to_owned()),
        ]
    }

    /// Reads each configured pair from the answer into `batch`.
    fn parse(&self, body: &Value, batch: &mut QuoteBatch) -> std::result::Result<(), String> {
        if let Some(e) = coingecko_error(body) {
            return Err(e);
        }
        let Some(coins) = body.as_object() else {
            return Err(format!(
                "expected an object of coins, got {}",
                excerpt(body.to_string().as_bytes())
            ));
        };
        for (pair, id, vs) in &self.pairs {
            let Some(coin) = coins.get(id) else {
                batch.problem(format!("{pair}: missing from the answer (coin id {id:?})"));
                continue;
            };
            match quote(pair, coin, vs) {
                Ok(q) => batch.push(q),
                Err(why) => batch.problem(format!("{pair}: dropped: {why}")),
            }
        }
        Ok(())
    }
}

/// The quote of `pair` in one coin's prices: `{vs}` is the price, `{vs}_24h_vol` the volume in
/// the quote currency, `last_updated_at` Unix seconds. No bid, ask, base volume, high or low.
fn quote(pair: &Pair, coin: &Value, vs: &str) -> std::result::Result<Quote, String> {
    let decimal = |field: &str| -> std::result::Result<Option<f64>, String> {
        match coin.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => serde_json::from_value::<Decimal>(v.clone())
                .map(|d| Some(d.0))
                .map_err(|e| format!("{field}: {e}")),
        }
    };
    let price = decimal(vs)?.ok_or_else(|| format!("no {vs} price"))?;
    let mut q = Quote::new(pair.clone(), price);
    q.quote_volume_24h = decimal(&format!("{vs}_24h_vol"))?;
    q.exchange_time = coin
        .get("last_updated_at")
        .and_then(Value::as_i64)
        .and_then(|s| DateTime::<Utc>::from_timestamp(s, 0));
    Ok(q)
}

/// The error in any of CoinGecko's shapes: `{"status": {"error_code", "error_message"}}`,
/// `{"error_code", "status": {"error_message"}}`, `{"error": "..."}`.
fn coingecko_error(body: &Value) -> Option<String> {
    let status = body.get("status");
    let message = status
        .and_then(|s| s.get("error_message"))
        .or_else(|| body.get("error"))
        .or_else(|| body.get("error_message"))?;
    let message = message
        .as_str()
        .map_or_else(|| message.to_string(), str::to_owned);
    let code = body
        .get("error_code")
        .or_else(|| status.and_then(|s| s.get("error_code")));
    Some(match code {
        Some(code) => format!("{message} (error code {code})"),
        None => message,
    })
}

#[async_trait]
impl Source for CoingeckoSource {
    fn name(&self) -> &SourceName {
        &self.name
    }

    async fn fetch(&self, _tick: Tick) -> Result<Fetched> {
        let deadline = self.http.deadline();
        let reply = self.http.get(&self.url, &self.query(), deadline).await?;
        self.read(&reply, Utc::now())
    }
}

impl CoingeckoSource {
    /// The fetch made of one answer: its quotes, or why it gives none.
    pub(crate) fn read(&self, reply: &Reply, fetched_at: DateTime<Utc>) -> Result<Fetched> {
        let fail = |message: String| -> Error {
            self.http.error(
                format!("GET {}: HTTP {}: {message}", self.url, reply.status),
                false,
            )
        };
        let body = reply
            .json()
            .map_err(|why| self.http.error(format!("GET {}: {why}", self.url), false))?;
        if !reply.is_success() {
            return Err(fail(
                coingecko_error(&body).unwrap_or_else(|| excerpt(&reply.body)),
            ));
        }
        let mut batch = QuoteBatch::new(&self.name);
        self.parse(&body, &mut batch).map_err(fail)?;
        batch.finish(body, fetched_at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn source(pairs: &[(&str, &str)]) -> CoingeckoSource {
        let config = SourceConfig {
            kind: crate::config::ExchangeKind::Coingecko,
            name: SourceName::new("coingecko").unwrap(),
            pairs: PairSelection::List(pairs.iter().map(|(p, _)| Pair::new(p).unwrap()).collect()),
            base_url: "http://127.0.0.1:9".to_owned(),
            timeout_secs: None,
            max_body_bytes: crate::config::DEFAULT_MAX_BODY_BYTES,
            api_key_env: None,
            ids: pairs
                .iter()
                .map(|(p, id)| (Pair::new(p).unwrap(), (*id).to_owned()))
                .collect(),
        };
        CoingeckoSource::new(&config, &HttpPolicy::default(), &Secrets::default()).unwrap()
    }

    fn parse(s: &CoingeckoSource, body: Value) -> Result<Fetched> {
        let mut batch = QuoteBatch::new(&s.name);
        s.parse(&body, &mut batch)
            .map_err(|m| s.http.error(m, false))?;
        batch.finish(body, Utc::now())
    }

    #[test]
    fn query_groups_ids_and_currencies() {
        let s = source(&[
            ("BTC-USD", "bitcoin"),
            ("BTC-EUR", "bitcoin"),
            ("ETH-USD", "ethereum"),
        ]);
        let q = s.query();
        assert_eq!(q[0], ("ids", "bitcoin,ethereum".to_owned()));
        assert_eq!(q[1], ("vs_currencies", "eur,usd".to_owned()));
    }

    #[test]
    fn numbers_of_every_shape_and_null_volume() {
        let s = source(&[
            ("BTC-USD", "bitcoin"),
            ("ETH-USD", "ethereum"),
            ("PEPE-USD", "pepe"),
        ]);
        let f = parse(
            &s,
            json!({"bitcoin":{"usd":67187,"usd_24h_vol":3.1e10,"last_updated_at":1711356300},
                   "ethereum":{"usd":"3456.7","usd_24h_vol":null},
                   "pepe":{"usd":1.2e-5}}),
        )
        .unwrap();
        let q = &f.quotes;
        assert_eq!((q[0].price, q[0].quote_volume_24h), (67187.0, Some(3.1e10)));
        assert_eq!(q[0].exchange_time.unwrap().timestamp(), 1711356300);
        assert_eq!(
            (q[0].volume_24h, q[0].bid, q[0].high_24h),
            (None, None, None)
        );
        assert_eq!(
            (q[1].price, q[1].quote_volume_24h, q[1].exchange_time),
            (3456.7, None, None)
        );
        assert_eq!(q[2].price, 1.2e-5);
    }

    #[test]
    fn missing_ids_and_bad_prices_are_reported() {
        let s = source(&[
            ("BTC-USD", "bitcoin"),
            ("ETH-USD", "ethereum"),
            ("SOL-USD", "solana"),
        ]);
        let f = parse(&s, json!({"bitcoin":{"usd":1.0},"ethereum":{"usd":null}})).unwrap();
        assert_eq!(f.quotes.len(), 1);
        assert_eq!(
            f.problems,
            [
                "ETH-USD: dropped: no usd price",
                "SOL-USD: missing from the answer (coin id \"solana\")"
            ]
        );
        let e = parse(&s, json!({})).unwrap_err();
        assert!(e.to_string().contains("no valid quote"), "{e}");
    }

    #[test]
    fn every_error_shape() {
        for (body, want) in [
            (
                json!({"status":{"error_code":429,"error_message":"You've exceeded the Rate Limit."}}),
                "You've exceeded the Rate Limit. (error code 429)",
            ),
            (
                json!({"timestamp":"x","error_code":10011,"status":{"error_message":"use api.coingecko.com"}}),
                "use api.coingecko.com (error code 10011)",
            ),
            (json!({"error":"coin not found"}), "coin not found"),
        ] {
            assert_eq!(coingecko_error(&body).as_deref(), Some(want));
        }
        assert_eq!(coingecko_error(&json!({"bitcoin":{"usd":1}})), None);
    }
}
