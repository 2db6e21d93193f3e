//! The API's own response types: the views the handlers build from the contract's documents.
//!
//! The contract's documents themselves (`Summary`, `Candles`, `AlertEvent`, ...) are
//! `cryptomon-core`'s types, whose schemas its `openapi` feature derives.

use cryptomon_core::alerting::KeyedAlertEvent;
use std::collections::BTreeMap;

use cryptomon_core::{Point, Summary, Tick};
use serde::Serialize;
use utoipa::ToSchema;

/// One metric of `GET /api/metrics`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MetricInfo {
    /// `source:pair:measure`, e.g. `coinbase:BTC-USD:price`.
    pub id: String,
    /// The source.
    pub source: String,
    /// The pair.
    pub pair: String,
    /// `price` or `volume`.
    pub measure: String,
    /// The last value in the window.
    pub last: f64,
    /// Share of the series whose std of this measure is ≤ this one's; `null` when undefined.
    /// The std is absolute: on price, the most expensive asset ranks first.
    pub rank: Option<f64>,
    /// For `price`, the series' `volatility_rank` (share of the series whose `volatility_pct`
    /// is ≤ this one's); `null` for `volume` and where the volatility is undefined.
    pub volatility_rank: Option<f64>,
}

/// Statistics of one metric over the window.
///
/// For `price` they are the summary's values; for `volume` they are computed from the points.
/// The fields after `std` are defined for `price` only (`null` for `volume`).
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct MetricStats {
    /// Points in the window.
    pub samples: u32,
    /// First value.
    pub first: f64,
    /// Last value.
    pub last: f64,
    /// (last / first − 1) × 100.
    pub change_pct: f64,
    /// Highest value.
    pub high: f64,
    /// Lowest value.
    pub low: f64,
    /// Arithmetic mean.
    pub mean: f64,
    /// Sample standard deviation; `null` with fewer than 2 points.
    pub std: Option<f64>,
    /// Annualised volatility of one-minute log returns, in percent.
    pub volatility_pct: Option<f64>,
    /// Largest fall from a running peak, in percent.
    pub max_drawdown_pct: Option<f64>,
    /// Wilder's 14-sample RSI.
    pub rsi_14: Option<f64>,
    /// Mean of the last 60 samples.
    pub sma_60: Option<f64>,
    /// Exponential moving average (span 60) at the last sample.
    pub ema_60: Option<f64>,
    /// Missing one-minute slots between the first and last sample.
    pub gaps: Option<i64>,
}

/// `GET /api/metrics/{id}`: what a chart and its rank need, in one call.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MetricDetail {
    /// `source:pair:measure`.
    pub id: String,
    /// The source.
    pub source: String,
    /// The pair.
    pub pair: String,
    /// `price` or `volume`.
    pub measure: String,
    /// The summary's `as_of`.
    pub as_of: String,
    /// The values of the last 24 h, oldest first.
    pub points: Vec<Point>,
    /// Statistics over the window.
    pub stats: MetricStats,
    /// Share of the series whose std of this measure is ≤ this one's (0 to 1]; `null` when
    /// undefined. The std is absolute: on price, the most expensive asset ranks first.
    pub rank: Option<f64>,
    /// Number of series ranked on this measure (the rank's denominator).
    pub ranked: u32,
    /// For `price`, share of the series whose `volatility_pct` is ≤ this one's (0 to 1]; `null`
    /// for `volume` and where the volatility is undefined.
    pub volatility_rank: Option<f64>,
    /// Number of series with a volatility (the volatility rank's denominator).
    pub volatility_ranked: u32,
}

/// The freshness of one source in `GET /api/health`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SourceHealth {
    /// The source.
    pub source: String,
    /// The latest tick at which it has a sample.
    pub last_tick: String,
    /// Seconds between its last tick and now.
    pub age_secs: i64,
    /// Series of this source in the summary.
    pub series: u32,
    /// Older than the stale threshold, or behind the summary's `as_of`.
    pub stale: bool,
}

impl SourceHealth {
    /// The freshness of each source of `summary` at `now` (Unix seconds), sorted by name: stale
    /// when its last tick is more than `stale_after` seconds old, or behind the summary's
    /// `as_of`.
    pub(crate) fn of_summary(summary: &Summary, now: i64, stale_after: u64) -> Vec<SourceHealth> {
        let mut per_source: BTreeMap<&str, (Tick, u32)> = BTreeMap::new();
        for s in &summary.series {
            let e = per_source
                .entry(s.source.as_str())
                .or_insert((s.last_tick, 0));
            e.0 = e.0.max(s.last_tick);
            e.1 += 1;
        }
        per_source
            .into_iter()
            .map(|(source, (last_tick, series))| {
                let age = now - last_tick.unix();
                SourceHealth {
                    source: source.into(),
                    last_tick: last_tick.to_string(),
                    age_secs: age,
                    series,
                    stale: age > stale_after as i64 || last_tick < summary.as_of,
                }
            })
            .collect()
    }
}

/// `GET /api/health`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Health {
    /// `ok`, `stale` (a source is stale) or `empty` (no aggregates yet).
    pub status: String,
    /// cryptomon's version.
    pub version: String,
    /// The latest tick of the summary; `null` when empty.
    pub as_of: Option<String>,
    /// Seconds between `as_of` and now; `null` when empty.
    pub age_secs: Option<i64>,
    /// A source whose last snapshot is older than this is stale.
    pub stale_after_secs: u64,
    /// Per source, sorted by name.
    pub sources: Vec<SourceHealth>,
}

/// `GET /api/alerts`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct AlertEvents {
    /// The earliest tick asked for.
    pub(crate) since: Tick,
    /// Matching events, oldest first.
    pub(crate) events: Vec<KeyedAlertEvent>,
}
