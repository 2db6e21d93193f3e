//! Loading the window state a run stands on: from the cache, from the store's head, or none
//! (a rebuild), and why.

use super::super::blocking;
use super::super::cache::CachedState;
use super::super::state::{self, BaseRef, Manifest};
use super::options::{Clock, TransformMode};
use super::report::Io;
use crate::engine::Window;
use crate::error::{Error, Result};
use crate::keys::WINDOW_KEY;
use crate::store::{Fetch, Store, Version};

/// The state an incremental run stands on: the base (if the head names one) and the delta.
#[derive(Debug)]
pub(super) struct Prior {
    pub(super) base: Option<Window>,
    pub(super) delta: Window,
    /// Whether `base` is the whole window, the delta merged in already (a warm state), rather
    /// than the stored base.
    pub(super) whole: bool,
}

/// What [`load_state`] found.
pub(super) struct Loaded {
    /// The state, for an incremental run that can use it.
    pub(super) prior: Option<Prior>,
    /// Its manifest, or a new one.
    pub(super) manifest: Manifest,
    /// The head's version, for the conditional write.
    pub(super) version: Option<Version>,
    /// Why an incremental run rebuilds from raw, if it does.
    pub(super) rebuild: Option<String>,
    /// The slot a new base goes to: the one the head does not name.
    pub(super) next_slot: usize,
    /// Whether the state came from the cache, the head unchanged on the store.
    pub(super) warm: bool,
}

impl Loaded {
    /// The base the head names, while the state stands on it and it is not read yet (a state
    /// from the cache holds the whole window already).
    pub(super) fn unread_base(&self) -> Option<BaseRef> {
        match &self.prior {
            Some(Prior {
                base: None,
                whole: false,
                ..
            }) => self.manifest.base.clone(),
            _ => None,
        }
    }

    /// The state to rebuild from raw, its base found unusable for `reason`.
    pub(super) fn unusable_base(self, reason: String) -> Loaded {
        tracing::warn!(key = WINDOW_KEY, %reason, "rebuilding the window from raw");
        Loaded {
            prior: None,
            next_slot: next_slot(Some(&self.manifest)),
            manifest: Manifest::new(),
            version: self.version,
            rebuild: Some(format!("window state unusable: {reason}")),
            warm: false,
        }
    }
}

/// Reads the state's head. Returns the state (for an incremental run; the base the head names
/// is left to the caller to read, see `Loaded::unread_base`), the head's version (for the
/// conditional write), and why a rebuild is needed if one is.
///
/// With `warm` (what this process wrote last), the head is read only if it changed since: when
/// it did not, the state is `warm`'s and nothing is transferred.
pub(super) async fn load_state(
    store: &dyn Store,
    mode: TransformMode,
    io: &mut Io,
    warm: Option<CachedState>,
    clock: Clock,
) -> Result<Loaded> {
    let warm = warm.filter(|_| mode == TransformMode::Incremental);
    let object = match store
        .get_opts(WINDOW_KEY, warm.as_ref().map(|w| &w.version))
        .await?
    {
        Fetch::Found(object) => Some(object),
        Fetch::Missing => None,
        Fetch::NotModified => {
            let warm = warm.ok_or_else(|| {
                Error::Engine(format!(
                    "{WINDOW_KEY}: not modified, but no version was given"
                ))
            })?;
            io.read += 1;
            return Ok(Loaded {
                next_slot: next_slot(Some(&warm.manifest)),
                prior: Some(Prior {
                    base: Some(warm.window),
                    delta: warm.delta,
                    whole: true,
                }),
                manifest: warm.manifest,
                version: Some(warm.version),
                rebuild: None,
                warm: true,
            });
        }
    };
    let Some(object) = object else {
        let reason = (mode == TransformMode::Incremental).then(|| "no window state yet".to_owned());
        if let Some(r) = &reason {
            tracing::info!("rebuilding the window from raw: {r}");
        }
        return Ok(Loaded {
            prior: None,
            manifest: Manifest::new(),
            version: None,
            rebuild: reason,
            next_slot: 0,
            warm: false,
        });
    };
    io.read += 1;
    io.bytes_read += object.body.len() as u64;
    let version = Some(object.version.clone());
    let decoded = blocking(move || Ok(state::decode_head(&object.body))).await?;
    // Without the state: a full run asked for, or (with `why`) an incremental one that cannot
    // use it. `head` is the manifest read, if any: the next base goes to the slot it does not
    // name.
    let rebuild = |why: Option<String>, head: Option<&Manifest>| {
        if let Some(reason) = &why {
            tracing::warn!(key = WINDOW_KEY, %reason, "rebuilding the window from raw");
        }
        Loaded {
            prior: None,
            manifest: Manifest::new(),
            version: version.clone(),
            rebuild: why.map(|reason| format!("window state unusable: {reason}")),
            next_slot: next_slot(head),
            warm: false,
        }
    };
    let unusable = |reason: String| (mode == TransformMode::Incremental).then_some(reason);
    let (delta, manifest) = match decoded {
        Ok(head) => head,
        Err(reason) => return Ok(rebuild(unusable(reason), None)),
    };
    if mode == TransformMode::Full {
        return Ok(rebuild(None, Some(&manifest)));
    }
    // A state that took in a snapshot from the future (written before ticks were bounded)
    // would hold every later run's window there: it is rebuilt from what the clock allows.
    if let Some(Err(why)) = manifest.as_of.map(|as_of| clock.check("as_of", as_of)) {
        return Ok(rebuild(Some(format!("its {why}")), Some(&manifest)));
    }
    Ok(Loaded {
        // The base is read by the caller, alongside what is new (`Loaded::unread_base`).
        prior: Some(Prior {
            base: None,
            delta,
            whole: false,
        }),
        next_slot: next_slot(Some(&manifest)),
        manifest,
        version,
        rebuild: None,
        warm: false,
    })
}

/// The base slot the head of `manifest` does not name (0 without one).
fn next_slot(manifest: Option<&Manifest>) -> usize {
    manifest
        .and_then(|m| m.base.as_ref())
        .map_or(0, |b| 1 - b.slot)
}
