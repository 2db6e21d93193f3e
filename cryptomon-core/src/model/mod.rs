//! The data model of the contract: pairs, ticks, quotes, snapshots, backfill objects and
//! aggregates.

mod backfill;
mod pair;
#[cfg(feature = "openapi")]
mod schema;
mod snapshot;
mod summary;
mod tick;

pub use backfill::{BACKFILL_SCHEMA, Backfill, BackfillSample, BackfillSeries, HOUR, Missing};
pub use pair::{Pair, SourceName};
#[cfg(feature = "openapi")]
pub use schema::pattern_schema;
pub use snapshot::{
    AMOUNT_RANGE, PRICE_RANGE, Quote, SNAPSHOT_SCHEMA, Snapshot, check_amount, check_price,
};
pub use summary::{
    Alert, CANDLES_SCHEMA, Candle, CandleInterval, Candles, Degraded, Measure, Point,
    SUMMARY_SCHEMA, SeriesSummary, SkippedDay, Spread, Summary,
};
pub use tick::{MINUTE, Tick};
