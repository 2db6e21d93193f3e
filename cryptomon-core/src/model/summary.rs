//! The aggregates of the contract: `cryptomon.summary/v1` and `cryptomon.candles/v1`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::pair::{Pair, SourceName};
use super::tick::Tick;
use crate::error::{Error, Result};

/// The schema tag of a summary.
pub const SUMMARY_SCHEMA: &str = "cryptomon.summary/v1";
/// The schema tag of a candle view.
pub const CANDLES_SCHEMA: &str = "cryptomon.candles/v1";

/// Every metric of one series over the window. Undefined values are `None` (`null` in JSON).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeriesSummary {
    /// The source.
    pub source: SourceName,
    /// The pair.
    pub pair: Pair,
    /// Samples in the window.
    pub samples: u32,
    /// First price of the window.
    pub first: f64,
    /// Last price of the window.
    pub last: f64,
    /// Tick of the last sample.
    pub last_tick: Tick,
    /// (last / first − 1) × 100.
    pub change_pct: f64,
    /// Highest price.
    pub high: f64,
    /// Lowest price.
    pub low: f64,
    /// Arithmetic mean price.
    pub mean: f64,
    /// Annualised volatility of one-minute log returns, in percent.
    pub volatility_pct: Option<f64>,
    /// Largest fall from a running peak, in percent.
    pub max_drawdown_pct: f64,
    /// Wilder's 14-sample RSI.
    pub rsi_14: Option<f64>,
    /// Mean of the last 60 samples.
    pub sma_60: Option<f64>,
    /// Exponential moving average, span 60, at the last sample.
    pub ema_60: f64,
    /// Missing one-minute slots between the first and last sample.
    pub gaps: i64,
    /// Sample standard deviation of the price.
    pub price_std: Option<f64>,
    /// The last known 24-hour base volume.
    pub volume_last: Option<f64>,
    /// Sample standard deviation of the 24-hour base volume.
    pub volume_std: Option<f64>,
    /// Share of series whose price std is ≤ this one's. The std is absolute, so the most
    /// expensive asset ranks first; `volatility_rank` is what compares markets.
    pub price_rank: Option<f64>,
    /// Share of series whose volume std is ≤ this one's.
    pub volume_rank: Option<f64>,
    /// Share of series whose `volatility_pct` is ≤ this one's; `null` with a `null` volatility.
    // A summary written before this field existed reads with `None`, as a `null`.
    #[serde(default)]
    pub volatility_rank: Option<f64>,
}

impl SeriesSummary {
    /// The first metric that is not a finite number, if any: a required one, or an optional one
    /// that is not `None`. The contract allows neither, so a series with one is left out.
    pub fn non_finite_field(&self) -> Option<&'static str> {
        let required = [
            ("first", self.first),
            ("last", self.last),
            ("change_pct", self.change_pct),
            ("high", self.high),
            ("low", self.low),
            ("mean", self.mean),
            ("max_drawdown_pct", self.max_drawdown_pct),
            ("ema_60", self.ema_60),
        ];
        let optional = [
            ("volatility_pct", self.volatility_pct),
            ("rsi_14", self.rsi_14),
            ("sma_60", self.sma_60),
            ("price_std", self.price_std),
            ("volume_last", self.volume_last),
            ("volume_std", self.volume_std),
            ("price_rank", self.price_rank),
            ("volume_rank", self.volume_rank),
            ("volatility_rank", self.volatility_rank),
        ];
        required
            .into_iter()
            .chain(optional.into_iter().filter_map(|(n, v)| Some((n, v?))))
            .find(|(_, v)| !v.is_finite())
            .map(|(name, _)| name)
    }
}

/// The cross-source spread of one pair at `as_of`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Spread {
    /// The pair.
    pub pair: Pair,
    /// How many sources quote it at `as_of`.
    pub sources: u32,
    /// Lowest last price.
    pub min: f64,
    /// Highest last price.
    pub max: f64,
    /// Source of the lowest price.
    pub min_source: SourceName,
    /// Source of the highest price.
    pub max_source: SourceName,
    /// (max − min) / min × 10 000.
    pub spread_bps: f64,
}

/// What a metric measures.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Measure {
    /// The last trade price.
    Price,
    /// The 24-hour base volume.
    Volume,
}

impl Measure {
    /// Both measures, in the contract's order.
    pub const ALL: [Measure; 2] = [Measure::Price, Measure::Volume];

    /// The lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Measure::Price => "price",
            Measure::Volume => "volume",
        }
    }
}

impl fmt::Display for Measure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Measure {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "price" => Ok(Measure::Price),
            "volume" => Ok(Measure::Volume),
            _ => Err(Error::Config(format!(
                "unknown measure {s:?} (price or volume)"
            ))),
        }
    }
}

/// A value at `as_of` above `factor` × its mean over the hour before.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// The source.
    pub source: SourceName,
    /// The pair.
    pub pair: Pair,
    /// Price or volume.
    pub measure: Measure,
    /// The value at `as_of`.
    pub value: f64,
    /// The mean of the measure's non-null values in [as_of − 60 min, as_of).
    pub mean_1h: f64,
    /// value / mean_1h.
    pub ratio: f64,
}

/// The 24-hour summary of every series (`cryptomon.summary/v1`).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Always `cryptomon.summary/v1`.
    pub schema: String,
    /// The latest tick in the store.
    pub as_of: Tick,
    /// The window's length.
    pub window_minutes: u32,
    /// Sorted by (pair, source).
    pub series: Vec<SeriesSummary>,
    /// Sorted by pair.
    pub spreads: Vec<Spread>,
    /// Sorted by (pair, source, measure).
    pub alerts: Vec<Alert>,
}

/// A part of a stored summary (a series, a spread or an alert) that [`Summary::from_json`] left
/// out, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Degraded {
    /// Which part: `series kraken BTC-USD`, `spread 2`, `alert 0`.
    pub part: String,
    /// What was wrong with it.
    pub reason: String,
}

impl fmt::Display for Degraded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.part, self.reason)
    }
}

/// A summary as stored, its parts not yet read one by one.
#[derive(Deserialize)]
struct StoredSummary<'a> {
    schema: String,
    as_of: Tick,
    window_minutes: u32,
    #[serde(borrow)]
    series: Vec<&'a serde_json::value::RawValue>,
    #[serde(borrow)]
    spreads: Vec<&'a serde_json::value::RawValue>,
    #[serde(borrow)]
    alerts: Vec<&'a serde_json::value::RawValue>,
}

/// What names a series in a message, read leniently.
#[derive(Deserialize)]
struct SeriesName {
    source: Option<String>,
    pair: Option<String>,
}

impl Summary {
    /// Reads a stored summary, leaving out each series, spread or alert that cannot be read (a
    /// `null` or a string where the contract has a number: what a writer that broke the
    /// contract, or an older one, left), and saying which: one bad series never blanks the
    /// others. Only a summary whose frame (`schema`, `as_of`, `window_minutes`, the three lists)
    /// is unreadable is an error. JSON holds no NaN or infinity, so every number read is finite.
    pub fn from_json(bytes: &[u8]) -> std::result::Result<(Summary, Vec<Degraded>), String> {
        let stored: StoredSummary<'_> = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        if stored.schema != SUMMARY_SCHEMA {
            return Err(format!(
                "schema {:?}, expected {SUMMARY_SCHEMA:?}",
                stored.schema
            ));
        }
        let mut degraded = Vec::new();
        let series = read_parts(&stored.series, &mut degraded, |raw| {
            let or_unknown = |n: Option<String>| n.unwrap_or_else(|| "?".to_owned());
            match serde_json::from_str::<SeriesName>(raw) {
                Ok(n) => format!("series {} {}", or_unknown(n.source), or_unknown(n.pair)),
                Err(_) => "series ?".to_owned(),
            }
        });
        let spreads = read_parts(&stored.spreads, &mut degraded, |_| "spread".to_owned());
        let alerts = read_parts(&stored.alerts, &mut degraded, |_| "alert".to_owned());
        let summary = Summary {
            schema: stored.schema,
            as_of: stored.as_of,
            window_minutes: stored.window_minutes,
            series,
            spreads,
            alerts,
        };
        Ok((summary, degraded))
    }
}

/// Reads each of `raws`, recording the ones that fail in `degraded` under the name `name` gives
/// (from the part's text) and its position.
fn read_parts<T: serde::de::DeserializeOwned>(
    raws: &[&serde_json::value::RawValue],
    degraded: &mut Vec<Degraded>,
    name: impl Fn(&str) -> String,
) -> Vec<T> {
    raws.iter()
        .enumerate()
        .filter_map(|(i, raw)| match serde_json::from_str(raw.get()) {
            Ok(part) => Some(part),
            Err(e) => {
                degraded.push(Degraded {
                    part: format!("{} (#{i})", name(raw.get())),
                    reason: e.to_string(),
                });
                None
            }
        })
        .collect()
}

/// A candle interval of the contract.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum CandleInterval {
    /// One minute.
    #[serde(rename = "1m")]
    M1,
    /// Five minutes.
    #[serde(rename = "5m")]
    M5,
    /// Fifteen minutes.
    #[serde(rename = "15m")]
    M15,
    /// One hour.
    #[serde(rename = "1h")]
    H1,
    /// One UTC day.
    #[serde(rename = "1d")]
    D1,
}

impl CandleInterval {
    /// Every interval, shortest first.
    pub const ALL: [CandleInterval; 5] = [
        CandleInterval::M1,
        CandleInterval::M5,
        CandleInterval::M15,
        CandleInterval::H1,
        CandleInterval::D1,
    ];

    /// Length in seconds.
    pub const fn secs(self) -> i64 {
        match self {
            CandleInterval::M1 => 60,
            CandleInterval::M5 => 300,
            CandleInterval::M15 => 900,
            CandleInterval::H1 => 3600,
            CandleInterval::D1 => 86_400,
        }
    }

    /// The contract's name (`5m`).
    pub const fn as_str(self) -> &'static str {
        match self {
            CandleInterval::M1 => "1m",
            CandleInterval::M5 => "5m",
            CandleInterval::M15 => "15m",
            CandleInterval::H1 => "1h",
            CandleInterval::D1 => "1d",
        }
    }
}

impl fmt::Display for CandleInterval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CandleInterval {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        CandleInterval::ALL
            .into_iter()
            .find(|i| i.as_str() == s)
            .ok_or_else(|| {
                Error::Config(format!(
                    "unknown candle interval {s:?} (1m, 5m, 15m, 1h, 1d)"
                ))
            })
    }
}

/// One candle: [t, t + interval).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candle {
    /// Start, a multiple of the interval since the epoch.
    pub t: Tick,
    /// First price.
    pub o: f64,
    /// Highest price.
    pub h: f64,
    /// Lowest price.
    pub l: f64,
    /// Last price.
    pub c: f64,
    /// Samples in the candle.
    pub n: u32,
}

/// The candle view of one series (`cryptomon.candles/v1`).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candles {
    /// Always `cryptomon.candles/v1`.
    pub schema: String,
    /// The source.
    pub source: SourceName,
    /// The pair.
    pub pair: Pair,
    /// The interval.
    pub interval: CandleInterval,
    /// Non-empty candles inside the window (or the requested range), oldest first.
    pub candles: Vec<Candle>,
    /// History days of the range that could not be read, left out of the candles; absent
    /// when none was.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped_days: Vec<SkippedDay>,
}

/// A history day left out of an answer, and why.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkippedDay {
    /// The day, `YYYY-MM-DD`.
    pub date: String,
    /// Why it could not be read.
    pub reason: String,
}

/// One point of a metric's chart.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Point {
    /// The tick.
    pub t: Tick,
    /// The value.
    pub v: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_parse_and_print() {
        for i in CandleInterval::ALL {
            assert_eq!(i.as_str().parse::<CandleInterval>().unwrap(), i);
            assert_eq!(serde_json::to_value(i).unwrap(), i.as_str());
        }
        let err = "2m".parse::<CandleInterval>().unwrap_err().to_string();
        assert!(err.contains("\"2m\""), "{err}");
    }

    fn series(source: &str, pair: &str) -> SeriesSummary {
        SeriesSummary {
            source: SourceName::new(source).unwrap(),
            pair: Pair::new(pair).unwrap(),
            samples: 2,
            first: 1.0,
            last: 2.0,
            last_tick: Tick::from_unix(1_796_040_000),
            change_pct: 100.0,
            high: 2.0,
            low: 1.0,
            mean: 1.5,
            volatility_pct: None,
            max_drawdown_pct: 0.0,
            rsi_14: None,
            sma_60: None,
            ema_60: 1.03,
            gaps: 0,
            price_std: Some(0.7),
            volume_last: None,
            volume_std: None,
            price_rank: Some(1.0),
            volume_rank: None,
            volatility_rank: None,
        }
    }

    /// A summary that an older writer left with `null` in a required metric (it wrote an
    /// infinite `change_pct` so) loses that series only, and says which (issue 20).
    #[test]
    fn a_series_with_a_bad_field_is_left_out_not_the_summary() {
        let summary = Summary {
            schema: SUMMARY_SCHEMA.to_owned(),
            as_of: Tick::from_unix(1_796_040_000),
            window_minutes: 1440,
            series: vec![series("kraken", "BTC-USD"), series("kraken", "DUST-USD")],
            spreads: vec![],
            alerts: vec![],
        };
        let mut json = serde_json::to_value(&summary).unwrap();
        json["series"][1]["change_pct"] = serde_json::Value::Null;
        json["spreads"] = serde_json::json!([{"pair": "BTC-USD", "spread_bps": null}]);
        let (read, degraded) = Summary::from_json(json.to_string().as_bytes()).unwrap();
        assert_eq!(read.series, vec![series("kraken", "BTC-USD")]);
        assert!(read.spreads.is_empty());
        let parts: Vec<String> = degraded.iter().map(ToString::to_string).collect();
        assert_eq!(parts.len(), 2, "{parts:?}");
        assert!(
            parts[0].starts_with("series kraken DUST-USD (#1): invalid type: null"),
            "{parts:?}"
        );
        assert!(parts[1].starts_with("spread (#0)"), "{parts:?}");
        // A whole summary reads back as it was written.
        let whole = serde_json::to_vec(&summary).unwrap();
        assert_eq!(Summary::from_json(&whole).unwrap(), (summary, vec![]));
        // Only an unreadable frame is an error.
        assert!(Summary::from_json(br#"{"schema":"cryptomon.summary/v1"}"#).is_err());
        assert!(Summary::from_json(b"[]").is_err());
    }

    /// A summary written before `volatility_rank` existed reads, the rank `None`.
    #[test]
    fn a_summary_without_volatility_rank_reads() {
        let mut old = series("kraken", "BTC-USD");
        old.volatility_rank = Some(0.5);
        let mut json = serde_json::to_value(&old).unwrap();
        json.as_object_mut().unwrap().remove("volatility_rank");
        let read: SeriesSummary = serde_json::from_value(json).unwrap();
        old.volatility_rank = None;
        assert_eq!(read, old);
        // Written, it is always a key, `null` when undefined.
        assert_eq!(
            serde_json::to_value(&read).unwrap()["volatility_rank"],
            serde_json::Value::Null
        );
    }

    #[test]
    fn a_non_finite_metric_is_named() {
        let mut s = series("kraken", "BTC-USD");
        assert_eq!(s.non_finite_field(), None);
        s.volatility_rank = Some(f64::NAN);
        assert_eq!(s.non_finite_field(), Some("volatility_rank"));
        s.volatility_pct = Some(f64::INFINITY);
        assert_eq!(s.non_finite_field(), Some("volatility_pct"));
        s.change_pct = f64::NAN;
        assert_eq!(s.non_finite_field(), Some("change_pct"));
    }

    #[test]
    fn measures_parse() {
        assert_eq!("volume".parse::<Measure>().unwrap(), Measure::Volume);
        assert!("Volume".parse::<Measure>().is_err());
    }
}
