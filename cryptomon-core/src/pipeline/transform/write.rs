//! Writing a run's aggregates: the summary (never over a newer one), a new base on a
//! compaction, then the head, each conditionally.

use bytes::Bytes;

use super::super::blocking;
use super::super::state::{self, BASE_KEYS, BaseRef, Manifest};
use super::options::Clock;
use crate::engine::Window;
use crate::error::{Error, Result};
use crate::keys::{SUMMARY_KEY, WINDOW_KEY};
use crate::model::{Summary, Tick};
use crate::store::{PutMode, Store, StoreExt, Version};

/// Conditional-write conflicts tolerated before giving up (another transform keeps winning).
pub(super) const MAX_ATTEMPTS: u32 = 5;

/// What a run writes of the window state.
pub(super) struct State {
    /// The rows since the base, written in the head unless there is a new base.
    pub(super) delta: Window,
    /// A new base (the whole window), encoded.
    pub(super) new_base: Option<NewBase>,
    /// See [`Loaded::next_slot`](super::load::Loaded::next_slot).
    pub(super) next_slot: usize,
}

/// A new base, encoded, with what the head records of it.
pub(super) struct NewBase {
    pub(super) bytes: Vec<u8>,
    pub(super) generation: String,
    pub(super) rows: usize,
}

/// Writes the summary (never over a newer one, see [`put_summary`]), then (on a compaction) a
/// new base, then the head (conditionally) with the summary's version in its manifest; returns
/// the number of writes.
///
/// A new base goes to the slot the head does not name: until the head names it, readers keep
/// using the other one. The write is unconditional on purpose: a base written by a run that
/// then lost the head's conditional write (or died) must not block the next compaction. Should
/// two transforms compact at once, the loser's base may replace the winner's; the head records
/// the generation of its base, so every reader sees the mismatch and the next transform
/// rebuilds from raw: slower, never wrong.
pub(super) async fn write_aggregates(
    store: &dyn Store,
    state: State,
    mut manifest: Manifest,
    mode: PutMode,
    summary: &Summary,
    clock: Clock,
) -> Result<Written> {
    // The summary and a new base do not depend on each other: both are written at once (the
    // base's durable write took a full transform's last tenth when it waited on the summary's).
    // Only the head, written last, makes the new state current.
    let put_summary = async {
        let json = serde_json::to_vec(summary).map_err(|e| Error::Engine(e.to_string()))?;
        // The summary written with the state this run stands on: unchanged unless another
        // transform wrote since, which the condition catches.
        let expected = manifest.summary_version.clone().map(Version);
        put_summary(store, Bytes::from(json), summary.as_of, expected, clock).await
    };
    let put_base = async {
        let Some(base) = state.new_base else {
            return Ok(None);
        };
        let slot = state.next_slot;
        store.put(BASE_KEYS[slot], Bytes::from(base.bytes)).await?;
        Ok(Some(BaseRef {
            slot,
            generation: base.generation,
            rows: base.rows,
        }))
    };
    let (summary_version, base) = futures::try_join!(put_summary, put_base)?;
    manifest.summary_version = Some(summary_version.0);
    let mut writes = 1;
    let delta = match base {
        Some(base) => {
            writes += 1;
            manifest.base = Some(base);
            Window::empty()?
        }
        None => state.delta,
    };
    let (head, delta, manifest) = blocking(move || {
        let head = state::encode_head(&delta, &manifest)?;
        Ok((head, delta, manifest))
    })
    .await?;
    let version = put_conditionally(store, WINDOW_KEY, Bytes::from(head), mode).await?;
    Ok(Written {
        writes: writes + 1,
        version,
        manifest,
        delta,
    })
}

/// Writes `body` under `key` if the key still has the version `mode` expects (or is absent, for
/// [`PutMode::Create`]), failing with [`Error::Precondition`] when another writer changed it.
///
/// A refusal can also be this very write's: when the answer to a write that succeeded is lost,
/// the SDK retries it, and the retry finds the version it just made. So a refused write reads
/// the key back, and an object holding exactly `body` is taken as written: had another writer
/// made those bytes, the state would be the same.
async fn put_conditionally(
    store: &dyn Store,
    key: &str,
    body: Bytes,
    mode: PutMode,
) -> Result<Version> {
    match store.put_opts(key, body.clone(), mode).await {
        Ok(version) => Ok(version),
        Err(Error::Precondition { .. } | Error::AlreadyExists { .. }) => {
            match store.get(key).await? {
                Some(current) if current.body == body => {
                    tracing::info!(key, "a refused write had landed: its answer was lost");
                    Ok(current.version)
                }
                _ => Err(Error::Precondition { key: key.into() }),
            }
        }
        Err(e) => Err(e),
    }
}

/// Writes the summary `body` (as of `as_of`), never replacing a newer one.
///
/// The write is conditional on `expected` (the version written with the state the run stands
/// on; absent: the key must be). When the summary changed since, it is read: a summary as of a
/// later tick (and not ahead of `clock`) wins, and the run is refused with
/// [`Error::Precondition`] to run again on the newer state; an older one, an unreadable one, or
/// one from the future is replaced, conditionally again. A summary holding exactly `body` is
/// this write's own, its answer lost.
async fn put_summary(
    store: &dyn Store,
    body: Bytes,
    as_of: Tick,
    expected: Option<Version>,
    clock: Clock,
) -> Result<Version> {
    let mut mode = expected.map_or(PutMode::Create, PutMode::Update);
    for _ in 0..MAX_ATTEMPTS {
        match put_conditionally(store, SUMMARY_KEY, body.clone(), mode).await {
            Err(Error::Precondition { .. }) => {}
            done => return done,
        }
        let Some(current) = store.get(SUMMARY_KEY).await? else {
            mode = PutMode::Create;
            continue;
        };
        if current.body == body {
            return Ok(current.version);
        }
        let stored_as_of = Summary::from_json(&current.body).ok().map(|(s, _)| s.as_of);
        if let Some(theirs) =
            stored_as_of.filter(|t| *t > as_of && clock.check("as_of", *t).is_ok())
        {
            tracing::info!(ours = %as_of, %theirs, "a newer summary is stored: running again");
            return Err(Error::Precondition {
                key: SUMMARY_KEY.into(),
            });
        }
        mode = PutMode::Update(current.version);
    }
    Err(Error::Precondition {
        key: SUMMARY_KEY.into(),
    })
}

/// What [`write_aggregates`] wrote of the state.
pub(super) struct Written {
    /// Objects written.
    pub(super) writes: usize,
    /// The head's new version.
    pub(super) version: Version,
    /// The manifest written in the head.
    pub(super) manifest: Manifest,
    /// The delta written in the head.
    pub(super) delta: Window,
}
