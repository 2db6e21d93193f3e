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
    /// Share of series whose price std is ≤ this one's.
    pub price_rank: Option<f64>,
    /// Share of series whose volume std is ≤ this one's.
    pub volume_rank: Option<f64>,
}

/// The cross-source spread of one pair at `as_of`.
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Always [`SUMMARY_SCHEMA`].
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

/// A candle interval of the contract.
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
}

impl CandleInterval {
    /// Every interval, shortest first.
    pub const ALL: [CandleInterval; 4] = [
        CandleInterval::M1,
        CandleInterval::M5,
        CandleInterval::M15,
        CandleInterval::H1,
    ];

    /// Length in seconds.
    pub const fn secs(self) -> i64 {
        match self {
            CandleInterval::M1 => 60,
            CandleInterval::M5 => 300,
            CandleInterval::M15 => 900,
            CandleInterval::H1 => 3600,
        }
    }

    /// The contract's name (`5m`).
    pub const fn as_str(self) -> &'static str {
        match self {
            CandleInterval::M1 => "1m",
            CandleInterval::M5 => "5m",
            CandleInterval::M15 => "15m",
            CandleInterval::H1 => "1h",
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
                Error::Config(format!("unknown candle interval {s:?} (1m, 5m, 15m, 1h)"))
            })
    }
}

/// One candle: [t, t + interval).
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candles {
    /// Always [`CANDLES_SCHEMA`].
    pub schema: String,
    /// The source.
    pub source: SourceName,
    /// The pair.
    pub pair: Pair,
    /// The interval.
    pub interval: CandleInterval,
    /// Non-empty candles inside the window, oldest first.
    pub candles: Vec<Candle>,
}

/// One point of a metric's chart.
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

    #[test]
    fn measures_parse() {
        assert_eq!("volume".parse::<Measure>().unwrap(), Measure::Volume);
        assert!("Volume".parse::<Measure>().is_err());
    }
}
