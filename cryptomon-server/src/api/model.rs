//! The API's own response types, and the OpenAPI schemas of the contract's documents.
//!
//! The contract's types live in `cryptomon-core`, which stays free of web dependencies, so their
//! schemas are written here as mirrors (`*Doc`). A test compares the mirrors with what the
//! core really serializes, so they cannot drift apart unnoticed.

use cryptomon_core::Point;
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
    pub rank: Option<f64>,
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
    #[schema(value_type = Vec<PointDoc>)]
    pub points: Vec<Point>,
    /// Statistics over the window.
    pub stats: MetricStats,
    /// Share of the series whose std of this measure is ≤ this one's (0 to 1]; `null` when
    /// undefined.
    pub rank: Option<f64>,
    /// Number of series ranked on this measure (the rank's denominator).
    pub ranked: u32,
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

/// A point of a chart: `{t, v}`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Point)]
pub(crate) struct PointDoc {
    /// RFC 3339 tick.
    pub(crate) t: String,
    /// The value.
    pub(crate) v: f64,
}

/// The 24-hour metrics of one series (`cryptomon.summary/v1`).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = SeriesSummary)]
pub(crate) struct SeriesSummaryDoc {
    /// The source.
    pub(crate) source: String,
    /// The pair.
    pub(crate) pair: String,
    /// Samples in the window.
    pub(crate) samples: u32,
    /// First price.
    pub(crate) first: f64,
    /// Last price.
    pub(crate) last: f64,
    /// Tick of the last sample.
    pub(crate) last_tick: String,
    /// (last / first − 1) × 100.
    pub(crate) change_pct: f64,
    /// Highest price.
    pub(crate) high: f64,
    /// Lowest price.
    pub(crate) low: f64,
    /// Mean price.
    pub(crate) mean: f64,
    /// Annualised volatility of one-minute log returns, in percent.
    pub(crate) volatility_pct: Option<f64>,
    /// Largest fall from a running peak, in percent.
    pub(crate) max_drawdown_pct: f64,
    /// Wilder's 14-sample RSI.
    pub(crate) rsi_14: Option<f64>,
    /// Mean of the last 60 samples.
    pub(crate) sma_60: Option<f64>,
    /// EMA (span 60) at the last sample.
    pub(crate) ema_60: f64,
    /// Missing one-minute slots.
    pub(crate) gaps: i64,
    /// Sample standard deviation of the price.
    pub(crate) price_std: Option<f64>,
    /// Last known 24-hour base volume.
    pub(crate) volume_last: Option<f64>,
    /// Sample standard deviation of the 24-hour volume.
    pub(crate) volume_std: Option<f64>,
    /// Rank of `price_std` among all series.
    pub(crate) price_rank: Option<f64>,
    /// Rank of `volume_std` among all series.
    pub(crate) volume_rank: Option<f64>,
}

/// The cross-source spread of one pair at `as_of`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Spread)]
pub(crate) struct SpreadDoc {
    /// The pair.
    pub(crate) pair: String,
    /// Sources quoting it at `as_of`.
    pub(crate) sources: u32,
    /// Lowest last price.
    pub(crate) min: f64,
    /// Highest last price.
    pub(crate) max: f64,
    /// Source of the lowest price.
    pub(crate) min_source: String,
    /// Source of the highest price.
    pub(crate) max_source: String,
    /// (max − min) / min × 10 000.
    pub(crate) spread_bps: f64,
}

/// A value at `as_of` above 3 × its mean over the hour before.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Alert)]
pub(crate) struct AlertDoc {
    /// The source.
    pub(crate) source: String,
    /// The pair.
    pub(crate) pair: String,
    /// `price` or `volume`.
    pub(crate) measure: String,
    /// The value at `as_of`.
    pub(crate) value: f64,
    /// Mean over [as_of − 60 min, as_of).
    pub(crate) mean_1h: f64,
    /// value / mean_1h.
    pub(crate) ratio: f64,
}

/// `cryptomon.summary/v1`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Summary)]
pub(crate) struct SummaryDoc {
    /// `cryptomon.summary/v1`.
    pub(crate) schema: String,
    /// The latest tick in the store.
    pub(crate) as_of: String,
    /// 1440.
    pub(crate) window_minutes: u32,
    /// Sorted by (pair, source).
    pub(crate) series: Vec<SeriesSummaryDoc>,
    /// Sorted by pair.
    pub(crate) spreads: Vec<SpreadDoc>,
    /// Sorted by (pair, source, measure).
    pub(crate) alerts: Vec<AlertDoc>,
}

/// One candle: [t, t + interval).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Candle)]
pub(crate) struct CandleDoc {
    /// Start (RFC 3339), a multiple of the interval since the epoch.
    pub(crate) t: String,
    /// Open.
    pub(crate) o: f64,
    /// High.
    pub(crate) h: f64,
    /// Low.
    pub(crate) l: f64,
    /// Close.
    pub(crate) c: f64,
    /// Samples.
    pub(crate) n: u32,
}

/// `cryptomon.candles/v1`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Candles)]
pub(crate) struct CandlesDoc {
    /// `cryptomon.candles/v1`.
    pub(crate) schema: String,
    /// The source.
    pub(crate) source: String,
    /// The pair.
    pub(crate) pair: String,
    /// `1m`, `5m`, `15m` or `1h`.
    pub(crate) interval: String,
    /// Non-empty candles inside the window, oldest first.
    pub(crate) candles: Vec<CandleDoc>,
}

/// A stored alert event (`cryptomon.alert/v1`), as `GET /api/alerts` and the `alert` events of
/// `/api/events` carry it.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = AlertEvent)]
pub(crate) struct AlertEventDoc {
    /// `cryptomon.alert/v1`.
    pub(crate) schema: String,
    /// `fired` or `resolved`.
    pub(crate) status: String,
    /// The rule's name.
    pub(crate) rule: String,
    /// `spike`, `threshold`, `change`, `spread` or `stale`.
    pub(crate) kind: String,
    /// The source (`null` for a spread).
    pub(crate) source: Option<String>,
    /// The pair (`null` for a stale source).
    pub(crate) pair: Option<String>,
    /// `price`, `volume`, or `null`.
    pub(crate) measure: Option<String>,
    /// The value that fired.
    pub(crate) value: f64,
    /// What it was compared with (a mean, a level, an earlier price, 0 bps, a staleness limit).
    pub(crate) reference: f64,
    /// value / reference.
    pub(crate) ratio: f64,
    /// The tick evaluated (RFC 3339).
    pub(crate) tick: String,
    /// The tick the alert fired at (RFC 3339).
    pub(crate) fired_at: String,
    /// The event's store key: unique, so a receiver can drop repeats.
    pub(crate) key: String,
}

/// `GET /api/alerts`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = AlertEvents)]
pub(crate) struct AlertEventsDoc {
    /// The earliest tick asked for (RFC 3339).
    pub(crate) since: String,
    /// Matching events, oldest first.
    pub(crate) events: Vec<AlertEventDoc>,
}
