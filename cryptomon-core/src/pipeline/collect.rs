//! The collect pipeline: source → validate → one snapshot at its tick's key.

use bytes::Bytes;
use futures::future::join_all;

use std::time::Duration;

use crate::error::{Error, Result};
use crate::keys::raw_key;
use crate::model::{Snapshot, SourceName, Tick};
use crate::source::Source;
use crate::store::{Store, StoreExt};

/// What one collection did.
#[derive(Debug, Clone, PartialEq)]
pub struct CollectReport {
    /// The source.
    pub source: SourceName,
    /// The tick collected.
    pub tick: Tick,
    /// The snapshot's key.
    pub key: String,
    /// Quotes in the snapshot.
    pub quotes: usize,
    /// `false` when a snapshot for this tick was already stored (nothing was written).
    pub written: bool,
    /// Quotes the source dropped or could not find, one line each.
    pub problems: Vec<String>,
}

/// Fetches `source` for `tick` and stores the snapshot under its raw key, unless one is already
/// there: a retried or duplicated collection for the same tick writes nothing.
///
/// A snapshot that fails validation is refused with an error naming the pair; nothing is written.
pub async fn collect(source: &dyn Source, store: &dyn Store, tick: Tick) -> Result<CollectReport> {
    let fetched = source.fetch(tick).await?;
    let snapshot = Snapshot::new(
        source.name().clone(),
        tick,
        fetched.fetched_at,
        fetched.quotes,
        fetched.raw,
    );
    snapshot.validate()?;
    let key = raw_key(&snapshot.source, tick);
    let written = store
        .put_if_absent(&key, Bytes::from(snapshot.to_json()))
        .await?;
    Ok(CollectReport {
        source: snapshot.source,
        tick,
        key,
        quotes: snapshot.quotes.len(),
        written,
        problems: fetched.problems,
    })
}

/// How long one source may take for one tick before `collect_all` gives up on it. The exchange
/// sources keep their own, shorter budget; this bounds any source, so one that hangs cannot
/// stall a schedule.
pub const SOURCE_TIMEOUT: Duration = Duration::from_secs(45);

/// Collects every source for `tick` concurrently, each within [`SOURCE_TIMEOUT`]; one failing
/// or hanging source does not stop the others. Results are in the order of `sources`.
pub async fn collect_all<S: AsRef<dyn Source>>(
    sources: &[S],
    store: &dyn Store,
    tick: Tick,
) -> Vec<(SourceName, Result<CollectReport>)> {
    collect_all_within(sources, store, tick, SOURCE_TIMEOUT).await
}

/// [`collect_all`] with another per-source time limit. A source cut off writes nothing (its
/// fetch never returned) and reports a retryable [`Error::Source`].
pub async fn collect_all_within<S: AsRef<dyn Source>>(
    sources: &[S],
    store: &dyn Store,
    tick: Tick,
    limit: Duration,
) -> Vec<(SourceName, Result<CollectReport>)> {
    join_all(sources.iter().map(|s| async move {
        let s = s.as_ref();
        let result = match tokio::time::timeout(limit, collect(s, store, tick)).await {
            Ok(result) => result,
            Err(_) => Err(Error::Source {
                source_name: s.name().to_string(),
                message: format!("no answer within {} s", limit.as_secs_f64()),
                retryable: true,
            }),
        };
        (s.name().clone(), result)
    }))
    .await
}
