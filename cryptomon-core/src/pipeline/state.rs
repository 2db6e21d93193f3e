//! The transform's state: the window, split so that a tick writes only what it changed, and a
//! manifest of which raw objects it has taken in, so the next run reads only what arrived since.
//!
//! # Layout
//!
//! - The **head** ([`WINDOW_KEY`]): the rows taken in since the base was written (the *delta*),
//!   and the manifest, in one Parquet object written with a conditional put every tick. It is
//!   the state's single point of truth: whatever it names is the state.
//! - A **base** in one of two slots ([`BASE_KEYS`]): the whole window as of a compaction. It is
//!   written only when the delta has grown past 1 / [`COMPACT_EVERY`] of the window (about an
//!   hour of ticks), into the slot the head does not name, and the head then names it. A reader
//!   holding an old head still finds its base for an hour, and checks the generation the head
//!   records, so it never pairs a head with the wrong base.
//!
//! The window is the base and the delta merged (the delta wins a tie: it is newer). A tick
//! reads both (2 reads; a process holding the state it wrote reads neither, see `warm.rs`) and
//! writes the head and the summary (2 writes; 3 on a compaction), so what it writes is
//! proportional to the hour's rows, not the day's.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::engine::{WINDOW_MINUTES, Window, WindowBuilder};
use crate::error::{Error, Result};
use crate::keys::WINDOW_KEY;
use crate::model::Tick;
use crate::store::{Fetch, Store, StoreExt, Version};

/// The manifest's format; a state written with another is rebuilt from raw. 2: head and base.
pub(crate) const MANIFEST_FORMAT: u32 = 2;

/// The two slots a base is written to, in turn.
pub const BASE_KEYS: [&str; 2] = [
    "aggregates/window.v1.base-a.parquet",
    "aggregates/window.v1.base-b.parquet",
];

/// The delta is compacted into a new base once it holds more than 1 / `COMPACT_EVERY` of the
/// window's rows: with steady one-minute ticks over 24 h, once an hour.
pub(crate) const COMPACT_EVERY: usize = 24;

/// Which base the head stands on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct BaseRef {
    /// Index into [`BASE_KEYS`].
    pub(crate) slot: usize,
    /// The base's generation: unique to one write, recorded in the base too, so a reader never
    /// pairs a head with another base (store versions would not do: copying a store changes
    /// them).
    pub(crate) generation: String,
    /// Its rows, checked on reading.
    pub(crate) rows: usize,
}

/// What the window was built from. Stored in the head's Parquet metadata so the delta and the
/// manifest are one object, written in one atomic put.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Manifest {
    /// [`MANIFEST_FORMAT`].
    pub(crate) format: u32,
    /// The window's `as_of`.
    pub(crate) as_of: Option<Tick>,
    /// Raw objects taken in, per source: the ticks of their keys. Only the partitions the next
    /// run lists are kept.
    pub(crate) ingested: BTreeMap<String, BTreeSet<i64>>,
    /// Objects that could not be used, with the reason, so they are reported once and not
    /// re-read every tick.
    pub(crate) skipped: BTreeMap<String, String>,
    /// The version of the summary written with this state: while the summary still has it, a
    /// run with nothing new has nothing to write.
    #[serde(default)]
    pub(crate) summary_version: Option<String>,
    /// The base under the delta; `None` when the head holds the whole window.
    #[serde(default)]
    pub(crate) base: Option<BaseRef>,
    /// The latest tick the last listing of the store found (never past the clock): a
    /// reconciliation lists from about here. `None` makes the next run list the whole window.
    #[serde(default)]
    pub(crate) reconciled_at: Option<Tick>,
}

impl Manifest {
    pub(crate) fn new() -> Self {
        Manifest {
            format: MANIFEST_FORMAT,
            ..Manifest::default()
        }
    }

    /// Whether the object at `key` was taken in or skipped; `entry` is its ledger and tick
    /// (see [`Manifest::add`]) when it has the contract's layout.
    pub(crate) fn has(&self, key: &str, entry: Option<(&str, Tick)>) -> bool {
        if self.skipped.contains_key(key) {
            return true;
        }
        entry.is_some_and(|(ledger, tick)| {
            self.ingested
                .get(ledger)
                .is_some_and(|ticks| ticks.contains(&tick.unix()))
        })
    }

    /// Records an object taken in: `ledger` is its source's name for a snapshot, and
    /// `backfill/` and the name for a backfill; `tick` the tick (the hour) of its key.
    pub(crate) fn add(&mut self, ledger: &str, tick: Tick) {
        self.ingested
            .entry(ledger.to_owned())
            .or_default()
            .insert(tick.unix());
    }

    /// Forgets what lies in partitions before the one of `first`: the next run does not list
    /// them.
    pub(crate) fn prune(&mut self, first: Tick) {
        let (first_date, midnight) = (first.date(), first.unix() - first.unix().rem_euclid(86_400));
        for ticks in self.ingested.values_mut() {
            *ticks = ticks.split_off(&midnight);
        }
        self.ingested.retain(|_, ticks| !ticks.is_empty());
        self.skipped.retain(|key, _| match partition_date(key) {
            Some(date) => date >= first_date.as_str(),
            None => true,
        });
    }
}

/// The `date=` partition of a key, if it has one.
pub(crate) fn partition_date(key: &str) -> Option<&str> {
    key.split('/').find_map(|seg| seg.strip_prefix("date="))
}

/// The head: the delta and its manifest, as one Parquet object.
pub(crate) fn encode_head(delta: &Window, manifest: &Manifest) -> Result<Vec<u8>> {
    let meta =
        serde_json::to_string(manifest).map_err(|e| Error::Engine(format!("manifest: {e}")))?;
    delta.to_parquet(Some(meta))
}

/// Decodes a head. `Err` carries why the state cannot be used (for the log line that announces
/// a rebuild).
pub(crate) fn decode_head(bytes: &[u8]) -> std::result::Result<(Window, Manifest), String> {
    let (window, meta) = Window::from_parquet(bytes).map_err(|e| e.to_string())?;
    let meta = meta.ok_or("no manifest in the window state")?;
    let manifest: Manifest =
        serde_json::from_str(&meta).map_err(|e| format!("unreadable manifest: {e}"))?;
    if manifest.format != MANIFEST_FORMAT {
        return Err(format!(
            "manifest format {}, this build reads {MANIFEST_FORMAT}",
            manifest.format
        ));
    }
    if manifest
        .base
        .as_ref()
        .is_some_and(|b| b.slot >= BASE_KEYS.len())
    {
        return Err("the manifest names no base slot".into());
    }
    Ok((window, manifest))
}

/// Reads the base `base` names and checks it is the one the head was written with: the window
/// and its size in bytes, or (inner `Err`) why this base cannot be used with this head.
///
/// A store that fails is the outer error, not a reason to rebuild: it may answer next time,
/// and a rebuild would read every snapshot of the window instead.
pub(crate) async fn read_base(
    store: &dyn Store,
    base: &BaseRef,
) -> Result<std::result::Result<(Window, u64), String>> {
    let key = BASE_KEYS[base.slot];
    let Some(object) = store.get(key).await? else {
        return Ok(Err(format!("its base {key} is missing")));
    };
    let len = object.body.len() as u64;
    let decoded = super::blocking(move || Ok(Window::from_parquet(&object.body))).await?;
    let (window, generation) = match decoded {
        Ok(d) => d,
        Err(e) => return Ok(Err(format!("its base {key} is unreadable: {e}"))),
    };
    if generation.as_deref() != Some(base.generation.as_str()) {
        return Ok(Err(format!("its base {key} was rewritten since")));
    }
    if window.len() != base.rows {
        return Ok(Err(format!(
            "its base {key} has {} rows, the head expects {}",
            window.len(),
            base.rows
        )));
    }
    Ok(Ok((window, len)))
}

/// A generation for a new base: the window's `as_of`, the time and the process, so no two
/// writes share one.
pub(crate) fn new_generation(as_of: Tick) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{}-{nanos:x}-{:x}", as_of.compact(), std::process::id())
}

/// The window of a base and a delta: both merged, the delta winning a tie, trimmed to the 24 h
/// before the latest tick (see [`WindowBuilder::build_last`]).
pub(crate) fn merged(base: Option<Window>, delta: Window) -> Result<Window> {
    let mut builder = WindowBuilder::new();
    if let Some(base) = base {
        builder.push_window(base)?;
    }
    builder.push_window(delta)?;
    builder.build_last(WINDOW_MINUTES)
}

/// [`merged`], not trimmed: a run that closes a day of history keeps all of it.
pub(crate) fn merged_whole(base: Option<Window>, delta: Window) -> Result<Window> {
    let mut builder = WindowBuilder::new();
    if let Some(base) = base {
        builder.push_window(base)?;
    }
    builder.push_window(delta)?;
    builder.build()
}

/// The window state as the API keeps it: the window, and what it was read from, so the next
/// refresh reads only what changed.
#[derive(Debug, Clone)]
pub struct WindowState {
    /// The window: base and delta merged.
    pub window: Arc<Window>,
    /// The head's version.
    pub version: Version,
    /// The base it stands on, if any, kept so a refresh that finds the same base reads only the
    /// head.
    base: Option<(BaseRef, Arc<Window>)>,
}

/// Reads the window state; with `known` (the state read last time), reads nothing when the head
/// is unchanged (a conditional read) and only the head when its base is the same.
///
/// `Ok(None)`: there is no state yet. An unreadable state is an error naming the key and why.
pub async fn load_window(
    store: &dyn Store,
    known: Option<&WindowState>,
) -> Result<Option<WindowState>> {
    let object = match store
        .get_opts(WINDOW_KEY, known.map(|k| &k.version))
        .await?
    {
        Fetch::NotModified => return Ok(known.cloned()),
        Fetch::Missing => return Ok(None),
        Fetch::Found(o) => o,
    };
    let unreadable = |reason: String| Error::Decode {
        key: WINDOW_KEY.into(),
        reason,
    };
    let body = object.body;
    let (delta, manifest) = super::blocking(move || Ok(decode_head(&body)))
        .await?
        .map_err(unreadable)?;
    let base = match (&manifest.base, known.and_then(|k| k.base.as_ref())) {
        (None, _) => None,
        (Some(want), Some((had, window))) if want == had => Some((had.clone(), window.clone())),
        (Some(want), _) => {
            let (window, _) = read_base(store, want).await?.map_err(unreadable)?;
            Some((want.clone(), Arc::new(window)))
        }
    };
    // The base is kept for the next refresh, so the merge copies its columns.
    let base_window = base.as_ref().map(|(_, w)| Window::clone(w));
    let window = super::blocking(move || merged(base_window, delta)).await?;
    Ok(Some(WindowState {
        window: Arc::new(window),
        version: object.version,
        base,
    }))
}
