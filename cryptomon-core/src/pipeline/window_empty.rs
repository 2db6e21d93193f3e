//! Whether the window holds any snapshot yet: the question a program starting on a store asks
//! before backfilling it from the exchanges' candles.
//!
//! Both answers read the `raw/` date partitions (one list per source), not the snapshots, so
//! they cost a few requests however full the store is:
//!
//! - [`window_is_empty`] for a program that collects after it starts (`serve`,
//!   `transform --config`): no partition in the 24 hours before now;
//! - [`window_is_empty_before`] for one that runs after a collector already wrote this tick
//!   (the Lambda transformer): nothing but that tick's snapshots in the window. It lists the
//!   snapshots of the tick's date only when no earlier partition settles it.

use super::state::partition_date;
use super::transform::listing::window_first_date;
use crate::error::Result;
use crate::keys::{RAW_PREFIX, parse_raw_key};
use crate::model::Tick;
use crate::store::Store;

/// Whether no snapshot can be in the 24 hours before `now`: no `raw/` date partition from the
/// date of `now` − 24 h to `now`'s (one dated later holds snapshots ahead of the clock, which a
/// transform leaves unread). Reads the partitions, not the snapshots.
pub async fn window_is_empty(store: &dyn Store, now: Tick) -> Result<bool> {
    let (since, today) = (window_first_date(now), now.date());
    for partition in partitions(store).await? {
        // ISO dates compare as strings.
        if partition_date(&partition).is_some_and(|d| d >= since.as_str() && d <= today.as_str()) {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Whether the 24 hours before `tick` hold no snapshot older than `tick`: the window of a
/// fresh deployment, where the collector has written only this tick. A partition dated
/// between `tick` − 24 h and the day before `tick` answers no at once; only then are the
/// snapshots of `tick`'s own date listed, and any dated before `tick` answers no.
pub async fn window_is_empty_before(store: &dyn Store, tick: Tick) -> Result<bool> {
    let (since, today) = (window_first_date(tick), tick.date());
    let mut same_day = Vec::new();
    for partition in partitions(store).await? {
        match partition_date(&partition) {
            Some(d) if d >= since.as_str() && d < today.as_str() => return Ok(false),
            Some(d) if d == today => same_day.push(partition),
            _ => {}
        }
    }
    for partition in same_day {
        let keys = store.list(&partition).await?;
        if keys
            .iter()
            .filter_map(|key| parse_raw_key(key))
            .any(|key| key.tick < tick)
        {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Every `raw/source=S/date=D/` partition of the store.
async fn partitions(store: &dyn Store) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for source in store.list_prefixes(RAW_PREFIX).await? {
        out.extend(store.list_prefixes(&source).await?);
    }
    Ok(out)
}
