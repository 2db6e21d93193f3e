//! [`backfill`]: collect a stretch of history in one call, for demos and tests.

use cryptomon_core::model::MINUTE;
use cryptomon_core::{Result, Source, Store, Tick, collect};
use futures::{StreamExt, TryStreamExt, stream};

/// Collections in flight at once: the work is mostly the store's, which is often a disk or a
/// remote server that gains from concurrency but should not be flooded.
const CONCURRENCY: usize = 16;

/// Collects `source` at the `minutes` one-minute ticks ending at `last` (inclusive) into
/// `store`, as a scheduler would have, and returns how many snapshots were written (ticks
/// already stored are left alone, as [`collect`] does).
///
/// With a [`SyntheticSource`](crate::SyntheticSource), a backfill followed by live collection
/// gives one continuous market, since its quotes depend only on the tick.
///
/// # Errors
///
/// The first collection that fails; ticks collected before it stay stored.
pub async fn backfill(
    source: &dyn Source,
    store: &dyn Store,
    last: Tick,
    minutes: u32,
) -> Result<usize> {
    let ticks = (0..i64::from(minutes))
        .rev()
        .map(|i| last.add_secs(-i * MINUTE));
    let written: Vec<bool> = stream::iter(ticks)
        .map(|tick| async move { collect(source, store, tick).await.map(|r| r.written) })
        .buffer_unordered(CONCURRENCY)
        .try_collect()
        .await?;
    Ok(written.into_iter().filter(|&w| w).count())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{MemoryStore, SyntheticSource};

    #[tokio::test]
    async fn backfills_every_minute_once() {
        let store = MemoryStore::new();
        let source = SyntheticSource::demo();
        let last = Tick::parse("2026-11-28T00:30:00Z").unwrap();
        assert_eq!(backfill(&source, &store, last, 60).await.unwrap(), 60);
        let keys = store.keys();
        assert_eq!(keys.len(), 60);
        // The hour spans midnight: two date partitions.
        assert!(
            keys[0].ends_with("date=2026-11-27/20261127T233100Z.json"),
            "{}",
            keys[0]
        );
        assert!(keys[59].ends_with("date=2026-11-28/20261128T003000Z.json"));
        // Overlapping history is not written twice.
        assert_eq!(
            backfill(&source, &store, last.add_secs(120), 10)
                .await
                .unwrap(),
            2
        );
    }
}
