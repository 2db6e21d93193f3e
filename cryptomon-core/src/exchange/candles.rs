//! One-minute candles from the exchanges, for a backfill: [`CandleClient`], the one
//! [`CandleSource`] of every exchange, and the [`CandleApi`] trait each exchange's module
//! implements beside its `Exchange` (its candle endpoint, the most candles one request returns,
//! the reading of a row).
//!
//! The client pages a range by the exchange's cap, sends each page through the same HTTP layer
//! as the quotes (rate, retries, `Retry-After`, body cap), and checks the rows: each minute at
//! most once (an identical repeat is dropped, two different candles for one minute are an
//! error), sorted, every close within the contract's price range and every volume 0 or within
//! its amount range, or the whole answer for the pair is refused naming the pair and the field.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::Value;

use super::decimal::Decimal;
use super::http::{HttpClient, HttpPolicy};
use super::http_source::{Refusal, Request, json_body};
use super::reply::{Reply, excerpt};
use super::throttle::Throttle;
use super::{Binance, Coinbase, Coingecko, Kraken, entry_error};
use crate::candle_source::{CandleSource, DynCandleSource, MinuteCandle};
use crate::config::{Config, ExchangeKind, SourceConfig};
use crate::error::{Error, Result};
use crate::model::{MINUTE, Pair, SourceName, Tick, check_amount, check_price};
use crate::secrets::Secrets;

/// A candle row as an exchange's module reads it, before the client's checks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Row {
    /// Seconds since the epoch of the minute the candle opens.
    pub(crate) time: i64,
    /// Close price.
    pub(crate) close: f64,
    /// Base-asset volume of the minute.
    pub(crate) volume: Option<f64>,
}

/// What one exchange adds to [`CandleClient`].
///
/// # Contract
///
/// - `request` asks for the one-minute candles opening in `[from, to)`, a range of at most
///   [`CandleApi::PAGE_MINUTES`] minutes; the exchange may answer with more (the client keeps
///   the range) or fewer.
/// - `error` finds the exchange's error in a body, whatever its status, as `Exchange::error`.
/// - `rows` reads every row of a body, in any order, or says which field of which row is not
///   what the exchange documents.
pub(crate) trait CandleApi: std::fmt::Debug + Send + Sync + Sized + 'static {
    /// Requests per period, the exchange's quote rate: one limit per IP for both.
    const RATE: (u32, Duration);
    /// The most minutes one request covers; `None` when one request answers for any range.
    const PAGE_MINUTES: Option<i64>;
    /// How many of the most recent minutes the exchange serves, if it serves no older ones.
    const REACH: Option<(u32, &'static str)> = None;

    /// The exchange's part for the entry `config`, or why it does not suit it.
    fn for_candles(config: &SourceConfig) -> std::result::Result<Self, String>;

    /// The pairs the entry lists.
    fn candle_pairs(&self) -> Vec<Pair>;

    /// Why this exchange cannot give one-minute candles at all, if it cannot.
    fn unavailable(&self) -> Option<&'static str> {
        None
    }

    /// The request for the candles of `pair` opening in `[from, to)`.
    fn candle_request(&self, pair: &Pair, from: Tick, to: Tick) -> Request;

    /// The error `body` reports, if it is an error body.
    fn candle_error(&self, body: &Value) -> Option<Refusal>;

    /// The rows of `body` for `pair`.
    fn rows(&self, pair: &Pair, body: &Value) -> std::result::Result<Vec<Row>, String>;
}

/// An exchange's one-minute candles over HTTPS, for one `[[sources]]` entry.
#[derive(Debug)]
pub(crate) struct CandleClient<A> {
    name: SourceName,
    api: A,
    http: HttpClient,
}

impl<A: CandleApi> CandleClient<A> {
    /// The client of `config`, sharing `throttle` with the other entries of its exchange.
    fn new(config: &SourceConfig, policy: &HttpPolicy, throttle: Arc<Throttle>) -> Result<Self> {
        let api = A::for_candles(config).map_err(Error::Config)?;
        Ok(CandleClient {
            name: config.name.clone(),
            // Candle endpoints are public: no key is sent, even where the entry names one.
            http: HttpClient::new(&config.name, policy, config.max_body_bytes, throttle, None)?,
            api,
        })
    }

    /// The rows of one page, `[from, to)` within the exchange's cap.
    async fn page(&self, pair: &Pair, from: Tick, to: Tick) -> Result<Vec<Row>> {
        let request = self.api.candle_request(pair, from, to);
        let url = request.url.as_str();
        let reply = self
            .http
            .get(url, &request.query, self.http.deadline())
            .await?;
        let body = self.body(url, &reply)?;
        self.api.rows(pair, &body).map_err(|why| {
            let page = format!("GET {url} ({pair}, {from} to {to})");
            self.http.error(format!("{page}: {why}"), false)
        })
    }

    /// The JSON body of `reply`, or the error it stands for (as `HttpSource`'s bodies).
    fn body(&self, url: &str, reply: &Reply) -> Result<Value> {
        json_body(&self.http, url, reply, |body| self.api.candle_error(body))
    }
}

#[async_trait]
impl<A: CandleApi> CandleSource for CandleClient<A> {
    fn name(&self) -> &SourceName {
        &self.name
    }

    fn pairs(&self) -> Vec<Pair> {
        self.api.candle_pairs()
    }

    fn reach_minutes(&self) -> Option<(u32, &'static str)> {
        A::REACH
    }

    async fn candles(&self, pair: &Pair, from: Tick, to: Tick) -> Result<Vec<MinuteCandle>> {
        if let Some(why) = self.api.unavailable() {
            return Err(self.http.error(format!("{pair}: {why}"), false));
        }
        // Only whole minutes inside the range: the minute `to` falls in is not closed yet.
        let (from, to) = (ceil_minute(from), floor_minute(to));
        let mut rows = Vec::new();
        let mut start = from;
        while start < to {
            let end = match A::PAGE_MINUTES {
                Some(page) => start.add_secs(page * MINUTE).min(to),
                None => to,
            };
            rows.extend(self.page(pair, start, end).await?);
            start = end;
        }
        tidy(rows, from, to).map_err(|why| self.http.error(format!("{pair}: {why}"), false))
    }
}

/// `t` rounded up to a whole minute.
fn ceil_minute(t: Tick) -> Tick {
    Tick::from_unix(-(-t.unix()).div_euclid(MINUTE) * MINUTE)
}

/// `t` rounded down to a whole minute.
fn floor_minute(t: Tick) -> Tick {
    Tick::from_unix(t.unix().div_euclid(MINUTE) * MINUTE)
}

/// The rows opening in `[from, to)` as checked candles, oldest first, each minute once; or why
/// the answer cannot be vouched for.
pub(crate) fn tidy(
    rows: Vec<Row>,
    from: Tick,
    to: Tick,
) -> std::result::Result<Vec<MinuteCandle>, String> {
    let mut by_minute: HashMap<i64, Row> = HashMap::with_capacity(rows.len());
    for row in rows {
        if row.time < from.unix() || row.time >= to.unix() {
            continue;
        }
        let at = Tick::from_unix(row.time);
        if row.time % MINUTE != 0 {
            return Err(format!("candle time {at} is not on a whole minute"));
        }
        check_price(row.close).map_err(|why| format!("candle at {at}: close: {why}"))?;
        if let Some(volume) = row.volume {
            check_amount("volume", volume).map_err(|why| format!("candle at {at}: {why}"))?;
        }
        match by_minute.get(&row.time) {
            Some(seen) if *seen != row => {
                return Err(format!(
                    "two different candles for {at}: {seen:?} and {row:?}"
                ));
            }
            Some(_) => {}
            None => {
                by_minute.insert(row.time, row);
            }
        }
    }
    let mut candles: Vec<MinuteCandle> = by_minute
        .into_values()
        .map(|r| MinuteCandle {
            tick: Tick::from_unix(r.time),
            close: r.close,
            volume: r.volume,
        })
        .collect();
    candles.sort_by_key(|c| c.tick);
    Ok(candles)
}

/// Field `index` of `row`, named `name`, as a strict decimal.
pub(crate) fn decimal(row: &[Value], index: usize, name: &str) -> std::result::Result<f64, String> {
    let value = row
        .get(index)
        .ok_or_else(|| format!("no {name} (field {index})"))?;
    Decimal::deserialize(value)
        .map(|d| d.0)
        .map_err(|e| format!("{name}: {e}"))
}

/// Field `index` of `row`, named `name`, as a whole number.
pub(crate) fn integer(row: &[Value], index: usize, name: &str) -> std::result::Result<i64, String> {
    let value = row
        .get(index)
        .ok_or_else(|| format!("no {name} (field {index})"))?;
    value
        .as_i64()
        .ok_or_else(|| format!("{name}: {value} is not a whole number"))
}

/// The rows of an array of arrays, each read by `read`; errors name the row's position.
pub(crate) fn read_rows(
    rows: &Value,
    read: impl Fn(&[Value]) -> std::result::Result<Row, String>,
) -> std::result::Result<Vec<Row>, String> {
    let Some(rows) = rows.as_array() else {
        return Err(format!(
            "expected a list of candles, got {}",
            excerpt(rows.to_string().as_bytes())
        ));
    };
    rows.iter()
        .enumerate()
        .map(|(i, row)| {
            let fields = row
                .as_array()
                .ok_or_else(|| format!("candle row {i} is not a list"))?;
            read(fields).map_err(|why| format!("candle row {i}: {why}"))
        })
        .collect()
}

/// The policy of a backfill's requests: the collection's retries and timeouts, with a budget
/// per request long enough to wait out a `Retry-After` of a minute rather than give up.
pub fn backfill_policy() -> HttpPolicy {
    HttpPolicy {
        budget: Duration::from_secs(90),
        ..HttpPolicy::for_interval(crate::config::DEFAULT_INTERVAL_SECS)
    }
}

/// The candle sources of `config`, in file order, with [`backfill_policy`]. The secrets are
/// taken for symmetry with [`super::build_sources`]: candle endpoints are public, no key is read.
pub fn build_candle_sources(config: &Config, _secrets: &Secrets) -> Result<Vec<DynCandleSource>> {
    build_candle_sources_with(config, &backfill_policy())
}

/// [`build_candle_sources`] with a given policy. Entries of one exchange share one request rate.
pub fn build_candle_sources_with(
    config: &Config,
    policy: &HttpPolicy,
) -> Result<Vec<DynCandleSource>> {
    let mut throttles = HashMap::new();
    config
        .sources
        .iter()
        .enumerate()
        .map(|(index, entry)| {
            let policy = super::entry_policy(policy, entry);
            let built = match entry.kind {
                ExchangeKind::Coinbase => build::<Coinbase>(entry, &policy, &mut throttles),
                ExchangeKind::Kraken => build::<Kraken>(entry, &policy, &mut throttles),
                ExchangeKind::Binance => build::<Binance>(entry, &policy, &mut throttles),
                ExchangeKind::Coingecko => build::<Coingecko>(entry, &policy, &mut throttles),
            };
            built.map_err(|e| entry_error(index, entry, e))
        })
        .collect()
}

fn build<A: CandleApi>(
    entry: &SourceConfig,
    policy: &HttpPolicy,
    throttles: &mut HashMap<ExchangeKind, Arc<Throttle>>,
) -> Result<DynCandleSource> {
    let throttle = throttles
        .entry(entry.kind)
        .or_insert_with(|| Throttle::new(A::RATE.0, A::RATE.1))
        .clone();
    Ok(Box::new(CandleClient::<A>::new(entry, policy, throttle)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A range keeps only whole minutes inside it: the minute its end falls in is still open.
    #[test]
    fn a_range_is_cut_to_the_whole_minutes_inside_it() {
        let t = |s: &str| Tick::parse(s).unwrap();
        assert_eq!(
            ceil_minute(t("2026-11-27T12:00:30Z")),
            t("2026-11-27T12:01:00Z")
        );
        assert_eq!(
            floor_minute(t("2026-11-27T12:00:30Z")),
            t("2026-11-27T12:00:00Z")
        );
        assert_eq!(
            floor_minute(t("2026-11-27T12:00:00Z")),
            t("2026-11-27T12:00:00Z")
        );
        assert_eq!(
            ceil_minute(t("2026-11-27T12:00:00Z")),
            t("2026-11-27T12:00:00Z")
        );
        // Two rows of one minute that differ only in volume: the message shows both.
        let row = |volume| Row {
            time: t("2026-11-27T12:00:00Z").unix(),
            close: 1.0,
            volume: Some(volume),
        };
        let why = tidy(
            vec![row(1.0), row(2.0)],
            t("2026-11-27T12:00:00Z"),
            t("2026-11-27T12:01:00Z"),
        )
        .unwrap_err();
        assert!(why.contains("1.0") && why.contains("2.0"), "{why}");
    }

    fn row(time: i64, close: f64) -> Row {
        Row {
            time,
            close,
            volume: Some(1.0),
        }
    }

    #[test]
    fn rows_are_kept_in_range_sorted_and_once() {
        let rows = vec![
            row(180, 3.0),
            row(60, 1.0),
            row(120, 2.0),
            row(60, 1.0),
            row(0, 9.0),
        ];
        let candles = tidy(rows, Tick::from_unix(60), Tick::from_unix(180)).unwrap();
        let got: Vec<(i64, f64)> = candles.iter().map(|c| (c.tick.unix(), c.close)).collect();
        assert_eq!(got, [(60, 1.0), (120, 2.0)]);
    }

    #[test]
    fn conflicting_or_unaligned_or_extreme_rows_are_refused() {
        let (from, to) = (Tick::from_unix(0), Tick::from_unix(600));
        let e = tidy(vec![row(60, 1.0), row(60, 2.0)], from, to).unwrap_err();
        assert!(
            e.contains("two different candles for 1970-01-01T00:01:00Z"),
            "{e}"
        );
        let e = tidy(vec![row(61, 1.0)], from, to).unwrap_err();
        assert!(e.contains("not on a whole minute"), "{e}");
        let e = tidy(vec![row(60, 1e300)], from, to).unwrap_err();
        assert!(e.contains("close: price 1e300"), "{e}");
        let mut bad = row(60, 1.0);
        bad.volume = Some(-1.0);
        let e = tidy(vec![bad], from, to).unwrap_err();
        assert!(e.contains("volume -1e0"), "{e}");
    }
}
