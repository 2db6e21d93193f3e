//! The alert state: read (an unreadable one set aside and rebuilt from the stored events) and
//! saved conditionally.

use bytes::Bytes;

use super::super::transform::Skipped;
use super::events::read_events;
use crate::alerting::{ALERT_STATE_KEY, ALERTS_PREFIX, AlertEvent, AlertState, corrupt_state_key};
use crate::error::{Error, Result};
use crate::model::Tick;
use crate::store::{PutMode, Store, StoreExt, Version};

/// Conditional-write conflicts on the alert state tolerated before giving up.
pub(super) const MAX_STATE_ATTEMPTS: u32 = 5;

/// The alert state as read, and the unreadable one it replaced, if any.
pub(super) struct Loaded {
    pub(super) state: AlertState,
    pub(super) version: Option<Version>,
    pub(super) set_aside: Option<Skipped>,
}

/// Reads the alert state. One that cannot be read (not JSON, or of another format) is never
/// just dropped: its bytes are copied to [`corrupt_state_key`] (`now` naming the copy), and a
/// state rebuilt from the stored events replaces it, so what fired and has not resolved stays
/// firing rather than fire again.
pub(super) async fn load(store: &dyn Store, now: Tick) -> Result<Loaded> {
    for _ in 0..MAX_STATE_ATTEMPTS {
        let Some(object) = store.get(ALERT_STATE_KEY).await? else {
            return Ok(Loaded {
                state: AlertState::new(),
                version: None,
                set_aside: None,
            });
        };
        let reason = match AlertState::decode(&object.body) {
            Ok(state) => {
                return Ok(Loaded {
                    state,
                    version: Some(object.version),
                    set_aside: None,
                });
            }
            Err(reason) => reason,
        };
        let copy = corrupt_state_key(now);
        match store
            .put_opts(&copy, object.body.clone(), PutMode::Create)
            .await
        {
            Ok(_) | Err(Error::AlreadyExists { .. }) => {}
            Err(e) => return Err(e),
        }
        let state = AlertState::from_events(&recent_events(store).await?);
        match save(store, &state, Some(object.version)).await {
            Ok(version) => {
                tracing::warn!(
                    key = ALERT_STATE_KEY,
                    copy,
                    reason,
                    firing = state.active.len(),
                    "alert state unreadable: copied aside and rebuilt from the stored events; \
                     deliveries it still owed are not retried"
                );
                return Ok(Loaded {
                    state,
                    version: Some(version),
                    set_aside: Some(Skipped {
                        key: ALERT_STATE_KEY.into(),
                        reason: format!(
                            "unreadable alert state ({reason}): copied to {copy}, rebuilt from \
                             the stored events"
                        ),
                    }),
                });
            }
            // Another run replaced it meanwhile: read that one.
            Err(Error::Precondition { .. } | Error::AlreadyExists { .. }) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(Error::Precondition {
        key: ALERT_STATE_KEY.into(),
    })
}

/// The stored events of the 31 days up to the latest date that has any.
async fn recent_events(store: &dyn Store) -> Result<Vec<AlertEvent>> {
    let dates = store.list_prefixes(ALERTS_PREFIX).await?;
    let latest = dates.iter().rev().find_map(|d| {
        let date = d.strip_prefix(ALERTS_PREFIX)?.strip_prefix("date=")?;
        chrono::NaiveDate::parse_from_str(date.trim_end_matches('/'), "%Y-%m-%d").ok()
    });
    match latest {
        Some(to) => read_events(store, to - chrono::Days::new(30), to).await,
        None => Ok(Vec::new()),
    }
}

pub(super) async fn save(
    store: &dyn Store,
    state: &AlertState,
    version: Option<Version>,
) -> Result<Version> {
    // Conditional, like the window state: a delivery round and a transform never overwrite
    // each other's queue.
    let mode = match version {
        Some(v) => PutMode::Update(v),
        None => PutMode::Create,
    };
    store
        .put_opts(ALERT_STATE_KEY, Bytes::from(state.encode()), mode)
        .await
}
