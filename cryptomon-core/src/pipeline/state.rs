//! The transform's state: the window and a manifest of which raw objects it has taken in, so
//! the next run reads only what arrived since.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::engine::Window;
use crate::error::Result;
use crate::keys::RawKey;
use crate::model::{SourceName, Tick};

/// The manifest's format; a state written with another is rebuilt from raw.
pub(crate) const MANIFEST_FORMAT: u32 = 1;

/// What the window was built from. Stored in the window Parquet file's metadata so state and
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
}

impl Manifest {
    pub(crate) fn new() -> Self {
        Manifest {
            format: MANIFEST_FORMAT,
            ..Manifest::default()
        }
    }

    pub(crate) fn has(&self, key: &str, raw: Option<&RawKey>) -> bool {
        if self.skipped.contains_key(key) {
            return true;
        }
        raw.is_some_and(|r| {
            self.ingested
                .get(r.source.as_str())
                .is_some_and(|ticks| ticks.contains(&r.tick.unix()))
        })
    }

    pub(crate) fn add(&mut self, source: &SourceName, tick: Tick) {
        self.ingested
            .entry(source.to_string())
            .or_default()
            .insert(tick.unix());
    }

    /// Forgets what lies in partitions before `first_date`: the next run does not list them.
    pub(crate) fn prune(&mut self, first_date: &str) {
        for ticks in self.ingested.values_mut() {
            ticks.retain(|&t| Tick::from_unix(t).date().as_str() >= first_date);
        }
        self.ingested.retain(|_, ticks| !ticks.is_empty());
        self.skipped.retain(|key, _| match partition_date(key) {
            Some(date) => date >= first_date,
            None => true,
        });
    }
}

/// The `date=` partition of a key, if it has one.
pub(crate) fn partition_date(key: &str) -> Option<&str> {
    key.split('/').find_map(|seg| seg.strip_prefix("date="))
}

/// The window and its manifest, encoded as one Parquet object.
pub(crate) fn encode(window: &Window, manifest: &Manifest) -> Result<Vec<u8>> {
    let meta = serde_json::to_string(manifest)
        .map_err(|e| crate::Error::Engine(format!("manifest: {e}")))?;
    window.to_parquet(Some(meta))
}

/// Decodes a state object. `Err` carries why the state cannot be used (for the log line that
/// announces a rebuild).
pub(crate) fn decode(bytes: &[u8]) -> std::result::Result<(Window, Manifest), String> {
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
    Ok((window, manifest))
}
