//! The collect pipeline: source → validate → one snapshot at its tick's key.

use bytes::Bytes;
use futures::future::join_all;

use std::time::Duration;

use tokio::time::Instant;

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

/// How long one source may take for one tick when the caller sets no deadline. The exchange
/// sources keep their own, shorter budget; this bounds any source, so one that hangs cannot
/// stall a schedule.
pub const SOURCE_TIMEOUT: Duration = Duration::from_secs(45);

/// What a source's fetch leaves, within its time limit, for the snapshot's write: a tenth of
/// the limit, at most this.
const WRITE_ALLOWANCE: Duration = Duration::from_secs(2);

tokio::task_local! {
    static FETCH_DEADLINE: Instant;
}

/// When the fetch running in this task must be over, if its caller ([`collect_all_within`],
/// [`collect_all_until`]) set a deadline: sources end their retries, waits and request
/// timeouts by then, so they report their own error rather than being cut off.
pub fn fetch_deadline() -> Option<Instant> {
    FETCH_DEADLINE.try_with(|d| *d).ok()
}

/// Collects every source for `tick` concurrently, each within [`SOURCE_TIMEOUT`]; one failing
/// or hanging source does not stop the others. Results are in the order of `sources`.
pub async fn collect_all<S: AsRef<dyn Source>>(
    sources: &[S],
    store: &dyn Store,
    tick: Tick,
) -> Vec<(SourceName, Result<CollectReport>)> {
    collect_all_within(sources, store, tick, SOURCE_TIMEOUT).await
}

/// [`collect_all`] that is over by `deadline` (the end of the tick, a Lambda invocation's
/// deadline less a margin): each source gets `min(SOURCE_TIMEOUT, deadline - now)`.
pub async fn collect_all_until<S: AsRef<dyn Source>>(
    sources: &[S],
    store: &dyn Store,
    tick: Tick,
    deadline: Instant,
) -> Vec<(SourceName, Result<CollectReport>)> {
    let left = deadline.saturating_duration_since(Instant::now());
    collect_all_within(sources, store, tick, SOURCE_TIMEOUT.min(left)).await
}

/// [`collect_all`] with another per-source time limit. Each fetch must be over a little before
/// `limit` (see [`fetch_deadline`]), leaving time for the write; a source still running at
/// `limit` is cut off, writes nothing (its fetch never returned) and reports a retryable
/// [`Error::Source`].
pub async fn collect_all_within<S: AsRef<dyn Source>>(
    sources: &[S],
    store: &dyn Store,
    tick: Tick,
    limit: Duration,
) -> Vec<(SourceName, Result<CollectReport>)> {
    let started = Instant::now();
    let cut_off = started.checked_add(limit);
    let fetch_by = started.checked_add(limit - (limit / 10).min(WRITE_ALLOWANCE));
    join_all(sources.iter().map(|s| async move {
        let s = s.as_ref();
        let run = async {
            match fetch_by {
                Some(by) => FETCH_DEADLINE.scope(by, collect(s, store, tick)).await,
                None => collect(s, store, tick).await,
            }
        };
        let result = match cut_off {
            Some(at) => tokio::time::timeout_at(at, run).await,
            None => Ok(run.await),
        };
        let result = result.unwrap_or_else(|_| {
            Err(Error::Source {
                source_name: s.name().to_string(),
                message: format!("no answer within {} s", limit.as_secs_f64()),
                retryable: true,
            })
        });
        (s.name().clone(), result)
    }))
    .await
}
