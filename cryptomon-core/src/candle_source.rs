//! The [`CandleSource`] trait: where the one-minute candles of a backfill come from.

use std::fmt::Debug;

use async_trait::async_trait;

use crate::error::Result;
use crate::model::{Pair, SourceName, Tick};

/// One closed one-minute candle of one market, as much of it as a backfill uses.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MinuteCandle {
    /// The minute the candle opens (a multiple of 60 s).
    pub tick: Tick,
    /// The last trade price of the minute.
    pub close: f64,
    /// The base-asset volume traded in the minute, where the exchange gives it.
    pub volume: Option<f64>,
}

/// A market's one-minute history: an exchange's candle endpoint, a synthetic market.
///
/// # Contract
///
/// - [`CandleSource::candles`] returns the closed one-minute candles of `pair` opening in
///   `[from, to)`, oldest first, each minute at most once, every close within
///   [`PRICE_RANGE`](crate::model::PRICE_RANGE) and every volume 0 or within
///   [`AMOUNT_RANGE`](crate::model::AMOUNT_RANGE). A minute the exchange has no candle for is
///   absent, never made up.
/// - A body it cannot vouch for (a number out of range, two different candles for one minute)
///   is an `Err` naming the pair and the field, not a partial answer.
/// - Transport failures and error bodies are [`crate::Error::Source`], saying whether a later
///   attempt may succeed; the source does its own retries and honours the exchange's limits.
/// - [`CandleSource::reach_minutes`] says how far back the exchange serves candles at all, so
///   a caller does not ask for what cannot come.
#[async_trait]
pub trait CandleSource: Send + Sync + Debug + 'static {
    /// The name backfill objects carry: the source's, as its snapshots do.
    fn name(&self) -> &SourceName;

    /// The pairs this source can backfill (empty when the entry lists none, as with
    /// `pairs = "all"`).
    fn pairs(&self) -> Vec<Pair>;

    /// How many of the most recent minutes the exchange serves, the one still open included,
    /// with why, if it serves no older ones (Kraken: 720); `None` for no such limit.
    fn reach_minutes(&self) -> Option<(u32, &'static str)> {
        None
    }

    /// The one-minute candles of `pair` opening in `[from, to)`, oldest first.
    async fn candles(&self, pair: &Pair, from: Tick, to: Tick) -> Result<Vec<MinuteCandle>>;
}

/// A boxed, type-erased candle source.
pub type DynCandleSource = Box<dyn CandleSource>;
