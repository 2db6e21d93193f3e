//! The data model of the contract: pairs, ticks, quotes, snapshots and aggregates.

mod pair;
mod snapshot;
mod summary;
mod tick;

pub use pair::{Pair, SourceName};
pub use snapshot::{Quote, SNAPSHOT_SCHEMA, Snapshot};
pub use summary::{
    Alert, CANDLES_SCHEMA, Candle, CandleInterval, Candles, Measure, Point, SUMMARY_SCHEMA,
    SeriesSummary, Spread, Summary,
};
pub use tick::{MINUTE, Tick};
