//! Recording a transform's alert events: the rules evaluated, each new event stored
//! create-only, and a delivery queued for every sink.

use std::collections::BTreeMap;

use bytes::Bytes;

use super::super::transform::Skipped;
use super::state::{MAX_STATE_ATTEMPTS, load, save};
use crate::alerting::{ALERT_STATE_KEY, AlertConfig, AlertEvent, EventStatus, Pending, evaluate};
use crate::engine::Window;
use crate::error::{Error, Result};
use crate::model::{SourceName, Summary, Tick};
use crate::store::{PutMode, Store};

/// What recording did: the new events, and the unreadable state it set aside, if any.
#[derive(Debug, Clone, Default)]
pub(crate) struct Recorded {
    /// The events fired or resolved.
    pub events: Vec<AlertEvent>,
    /// The alert state found unreadable, with where it was copied.
    pub set_aside: Option<Skipped>,
}

/// Evaluates `config`'s rules at `as_of` (and the clock `now`, for stale sources), stores the
/// events they cause and queues them for every sink.
#[allow(clippy::too_many_arguments)] // the transform's results, passed through once
pub(crate) async fn record(
    store: &dyn Store,
    config: &AlertConfig,
    sinks: &[String],
    window: &Window,
    summary: &Summary,
    as_of: Tick,
    last_snapshot: &BTreeMap<SourceName, Tick>,
    now: Tick,
) -> Result<Recorded> {
    let conditions = evaluate(config, window, summary, as_of, last_snapshot, now)?;
    // Evaluated at the later of the data's tick and the clock's minute: stale sources are a
    // matter of the clock, the rest of the data.
    let at = as_of.max(Tick::floor(now.to_datetime(), 60));
    let mut set_aside = None;
    for _ in 0..MAX_STATE_ATTEMPTS {
        let loaded = load(store, now).await?;
        set_aside = set_aside.or(loaded.set_aside);
        let (mut state, version) = (loaded.state, loaded.version);
        let events = state.step_at(config, &conditions, at, as_of);
        if events.is_empty() && version.is_some() {
            // Nothing fired or resolved. The state's tick only guards re-runs of this tick,
            // which find no new events anyway: no write needed.
            return Ok(Recorded { events, set_aside });
        }
        for event in &events {
            let body = serde_json::to_vec(event).map_err(|e| Error::Engine(e.to_string()))?;
            // Create-only: a re-run of the tick (after a failed state write) stores nothing twice.
            match store
                .put_opts(&event.key(), Bytes::from(body), PutMode::Create)
                .await
            {
                Ok(_) | Err(Error::AlreadyExists { .. }) => {}
                Err(e) => return Err(e),
            }
            for sink in sinks {
                state.pending.push(Pending {
                    key: event.key(),
                    sink: sink.clone(),
                    attempts: 0,
                    error: String::new(),
                    delivery: String::new(),
                });
            }
        }
        match save(store, &state, version).await {
            Ok(_) => {
                events.iter().for_each(log);
                return Ok(Recorded { events, set_aside });
            }
            // A delivery round saved the state meanwhile: evaluate against its version.
            Err(Error::Precondition { .. } | Error::AlreadyExists { .. }) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(Error::Precondition {
        key: ALERT_STATE_KEY.into(),
    })
}

pub(super) fn log(event: &AlertEvent) {
    let text = event.text();
    match event.status {
        EventStatus::Fired => tracing::warn!(rule = event.rule, key = event.key(), "{text}"),
        EventStatus::Resolved => tracing::info!(rule = event.rule, key = event.key(), "{text}"),
    }
}
