//! The metric engine: the window of samples as a polars `DataFrame`, and everything the contract
//! computes from it. Pure: no I/O, no clock.

mod cross;
pub mod history;
pub(crate) mod series;
mod spikes;
mod views;
mod window;

use std::fmt::Debug;

pub use views::{bucket, candles, points};
pub use window::{SeriesKey, Window, WindowBuilder};

use crate::error::Result;
use crate::model::{SUMMARY_SCHEMA, Summary, Tick};

/// The contract's window: 24 hours.
pub const WINDOW_MINUTES: u32 = 1440;

/// Turns a window of samples into a summary.
///
/// # Contract
///
/// - Pure and synchronous: the same window and `as_of` give the same summary, bit for bit. Time
///   is an argument; an aggregator never reads a clock or a store.
/// - Only samples with ticks in (`as_of` − 24 h, `as_of`] count; a series without one is left
///   out.
/// - The result follows `cryptomon.summary/v1`: `series` sorted by (pair, source), `spreads` by
///   pair, `alerts` by (pair, source, measure), undefined values `None`.
pub trait Aggregator: Send + Sync + Debug {
    /// Summarises `window` as of `as_of`.
    fn aggregate(&self, window: &Window, as_of: Tick) -> Result<Summary>;

    /// A boxed copy, so pipelines can move the aggregator onto a blocking thread.
    fn clone_box(&self) -> Box<dyn Aggregator>;
}

/// The contract's metrics computed with polars.
#[derive(Debug, Clone, PartialEq)]
pub struct PolarsAggregator {
    /// Alert when a value exceeds this many times its recent mean (3 by default).
    pub alert_factor: f64,
    /// The recent mean's window, in minutes (60 by default).
    pub alert_minutes: u32,
}

impl Default for PolarsAggregator {
    fn default() -> Self {
        PolarsAggregator {
            alert_factor: 3.0,
            alert_minutes: 60,
        }
    }
}

impl Aggregator for PolarsAggregator {
    fn aggregate(&self, window: &Window, as_of: Tick) -> Result<Summary> {
        let window = window.trimmed(as_of, WINDOW_MINUTES)?;
        let mut series = series::series_metrics(&window)?;
        // Validated prices give finite metrics (`PRICE_RANGE`); a window built from unchecked
        // values may not, and the contract holds no NaN or infinity.
        series.retain(|s| match s.non_finite_field() {
            None => true,
            Some(field) => {
                tracing::warn!(source = %s.source, pair = %s.pair, field, "series left out: a metric is not finite");
                false
            }
        });
        cross::add_ranks(&mut series);
        let mut spreads = cross::spreads(&series, as_of);
        spreads.retain(|s| s.spread_bps.is_finite());
        let mut alerts = spikes::alerts(&window, as_of, self.alert_factor, self.alert_minutes)?;
        alerts.retain(|a| a.ratio.is_finite() && a.mean_1h.is_finite() && a.value.is_finite());
        Ok(Summary {
            schema: SUMMARY_SCHEMA.to_owned(),
            as_of,
            window_minutes: WINDOW_MINUTES,
            series,
            spreads,
            alerts,
        })
    }

    fn clone_box(&self) -> Box<dyn Aggregator> {
        Box::new(self.clone())
    }
}
