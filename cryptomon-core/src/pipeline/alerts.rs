//! Alerting in the pipeline: record the events a transform causes, then deliver them.
//!
//! Recording runs inside the transform, after the aggregates are written: it evaluates the
//! rules, stores each new event create-only under `alerts/` (so a re-run of a tick stores
//! nothing twice) and queues a delivery per sink in the alert state. Delivery is a separate
//! step the host runs after the transform ([`deliver`]): a slow or failing receiver never
//! delays or fails the transform, and what it did not take stays queued for the next run.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;

use crate::alerting::{
    ALERT_STATE_KEY, ALERTS_PREFIX, AlertConfig, AlertEvent, AlertState, EventStatus, Pending,
    evaluate, events::MAX_DELIVERY_ATTEMPTS,
};
use crate::engine::Window;
use crate::error::{Error, Result};
use crate::model::{SourceName, Summary, Tick};
use crate::store::{PutMode, Store, StoreExt};

/// Somewhere alert events go: a webhook, an SNS topic.
#[async_trait]
pub trait Notifier: Send + Sync + Debug {
    /// The sink's name in the alert state and in logs (a webhook's URL, `sns:<arn>`). Must not
    /// hold a secret.
    fn sink(&self) -> String;

    /// Delivers `events` (one or more, oldest first). `Ok` means the receiver took them all.
    async fn notify(&self, events: &[AlertEvent]) -> Result<()>;
}

/// A shared notifier.
pub type DynNotifier = Arc<dyn Notifier>;

/// Evaluates `config`'s rules at `as_of` (and the clock `now`, for stale sources), stores the
/// events they cause and queues them for every sink. Returns the new events.
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
) -> Result<Vec<AlertEvent>> {
    let conditions = evaluate(config, window, summary, as_of, last_snapshot, now)?;
    // Evaluated at the later of the data's tick and the clock's minute: stale sources are a
    // matter of the clock, the rest of the data.
    let at = as_of.max(Tick::floor(now.to_datetime(), 60));
    for _ in 0..MAX_STATE_ATTEMPTS {
        let (mut state, version) = load(store).await?;
        let events = state.step_at(config, &conditions, at, as_of);
        if events.is_empty() && version.is_some() {
            // Nothing fired or resolved. The state's tick only guards re-runs of this tick,
            // which find no new events anyway: no write needed.
            return Ok(events);
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
                });
            }
        }
        match save(store, &state, version).await {
            Ok(()) => {
                events.iter().for_each(log);
                return Ok(events);
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

/// What a delivery round did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryReport {
    /// Events delivered, counted once per sink.
    pub delivered: usize,
    /// Deliveries that failed this round, with the sink and why (queued again).
    pub failed: Vec<(String, String)>,
    /// Deliveries given up after [`MAX_DELIVERY_ATTEMPTS`].
    pub dropped: usize,
    /// Deliveries still queued.
    pub pending: usize,
}

/// Delivers what the alert state has queued, one batch per sink, and records what failed for
/// the next round. Never fails on a sink's error: it is reported and retried. Delivery is at
/// least once: a receiver can tell repeats by each event's `key`.
pub async fn deliver(store: &dyn Store, notifiers: &[DynNotifier]) -> Result<DeliveryReport> {
    let mut report = DeliveryReport::default();
    let (state, _) = load(store).await?;
    if state.pending.is_empty() {
        return Ok(report);
    }
    // What happened to each (key, sink): delivered (None) or failed (Some(reason)).
    let mut outcome: BTreeMap<(String, String), Option<String>> = BTreeMap::new();
    for notifier in notifiers {
        let sink = notifier.sink();
        let mine: Vec<&Pending> = state.pending.iter().filter(|p| p.sink == sink).collect();
        if mine.is_empty() {
            continue;
        }
        let mut events = Vec::with_capacity(mine.len());
        for p in &mine {
            match read_event(store, &p.key).await? {
                Some(e) => events.push(e),
                None => tracing::warn!(
                    key = p.key,
                    "queued alert event gone or unreadable; not delivered"
                ),
            }
        }
        events.sort_by_key(|e| (e.tick, e.key()));
        let result = if events.is_empty() {
            Ok(())
        } else {
            notifier.notify(&events).await
        };
        let failure = match result {
            Ok(()) => {
                tracing::info!(sink, events = events.len(), "alerts delivered");
                report.delivered += events.len();
                None
            }
            Err(e) => {
                let reason = e.to_string();
                tracing::warn!(sink, events = events.len(), %reason, "alert delivery failed; retrying at the next transform");
                report.failed.push((sink.clone(), reason.clone()));
                Some(reason)
            }
        };
        for p in mine {
            outcome.insert((p.key.clone(), sink.clone()), failure.clone());
        }
    }
    // Apply the outcome to the state as it is now (a transform may have queued more
    // meanwhile), conditionally, re-reading on a conflict.
    for _ in 0..MAX_STATE_ATTEMPTS {
        let (mut state, version) = load(store).await?;
        let (mut kept, mut dropped) = (Vec::new(), 0);
        for mut p in std::mem::take(&mut state.pending) {
            let sink_known = notifiers.iter().any(|n| n.sink() == p.sink);
            match outcome.get(&(p.key.clone(), p.sink.clone())) {
                Some(None) => {}
                Some(Some(reason)) => {
                    p.attempts += 1;
                    p.error = reason.clone();
                    if p.attempts >= MAX_DELIVERY_ATTEMPTS {
                        tracing::error!(
                            sink = p.sink,
                            key = p.key,
                            "giving up on an alert delivery"
                        );
                        dropped += 1;
                    } else {
                        kept.push(p);
                    }
                }
                // Queued after this round started: next round. A sink no longer configured:
                // nothing will ever deliver it.
                None if sink_known => kept.push(p),
                None => dropped += 1,
            }
        }
        state.pending = kept;
        match save(store, &state, version).await {
            Ok(()) => {
                report.dropped = dropped;
                report.pending = state.pending.len();
                return Ok(report);
            }
            Err(Error::Precondition { .. } | Error::AlreadyExists { .. }) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(Error::Precondition {
        key: ALERT_STATE_KEY.into(),
    })
}

/// Conditional-write conflicts on the alert state tolerated before giving up.
const MAX_STATE_ATTEMPTS: u32 = 5;

fn log(event: &AlertEvent) {
    let text = event.text();
    match event.status {
        EventStatus::Fired => tracing::warn!(rule = event.rule, key = event.key(), "{text}"),
        EventStatus::Resolved => tracing::info!(rule = event.rule, key = event.key(), "{text}"),
    }
}

async fn load(store: &dyn Store) -> Result<(AlertState, Option<crate::store::Version>)> {
    match store.get(ALERT_STATE_KEY).await? {
        Some(o) => {
            let state = AlertState::decode(&o.body).unwrap_or_else(|| {
                tracing::warn!(
                    key = ALERT_STATE_KEY,
                    "alert state unreadable; starting afresh"
                );
                AlertState::new()
            });
            Ok((state, Some(o.version)))
        }
        None => Ok((AlertState::new(), None)),
    }
}

async fn save(
    store: &dyn Store,
    state: &AlertState,
    version: Option<crate::store::Version>,
) -> Result<()> {
    // Conditional, like the window state: a delivery round and a transform never overwrite
    // each other's queue.
    let mode = match version {
        Some(v) => PutMode::Update(v),
        None => PutMode::Create,
    };
    store
        .put_opts(ALERT_STATE_KEY, Bytes::from(state.encode()), mode)
        .await
        .map(|_| ())
}

/// The alert set-up a host runs with: the rules and where their events go.
#[derive(Debug, Clone, Default)]
pub struct Alerting {
    /// The rules.
    pub config: Arc<AlertConfig>,
    /// The sinks (webhooks, SNS); the log is always one besides them.
    pub notifiers: Vec<DynNotifier>,
}

impl Alerting {
    /// Rules and notifiers.
    pub fn new(config: AlertConfig, notifiers: Vec<DynNotifier>) -> Self {
        Alerting {
            config: Arc::new(config),
            notifiers,
        }
    }

    /// The `[alerts]` table of a config, checked (an invalid rule is an error naming it), with
    /// a notifier for each webhook (secrets read from the environment now).
    #[cfg(feature = "webhooks")]
    pub fn from_config(config: &crate::config::Config) -> Result<Self> {
        let alerts = AlertConfig::from_toml(config.alerts.as_ref())?;
        let notifiers = crate::alerting::webhook_notifiers(&alerts)?;
        Ok(Self::new(alerts, notifiers))
    }

    /// Transform options in `mode` that evaluate these rules and queue events for these sinks.
    pub fn options(&self, mode: super::TransformMode) -> super::TransformOptions {
        super::TransformOptions {
            mode,
            alerts: self.config.clone(),
            sinks: self.notifiers.iter().map(|n| n.sink()).collect(),
            ..super::TransformOptions::default()
        }
    }

    /// One delivery round to every notifier ([`deliver`]); nothing to do without notifiers.
    pub async fn deliver(&self, store: &dyn Store) -> Result<DeliveryReport> {
        if self.notifiers.is_empty() {
            return Ok(DeliveryReport::default());
        }
        deliver(store, &self.notifiers).await
    }
}

/// The stored events of the dates from `from` to `to` (inclusive, at most 31 days), oldest
/// first. An unreadable event object is skipped with a warning.
pub async fn read_events(
    store: &dyn Store,
    from: chrono::NaiveDate,
    to: chrono::NaiveDate,
) -> Result<Vec<AlertEvent>> {
    let mut events = Vec::new();
    for key in list_event_keys(store, from, to).await? {
        if let Some(event) = read_event(store, &key).await? {
            events.push(event);
        }
    }
    events.sort_by_key(|e| (e.tick, e.key()));
    Ok(events)
}

/// The keys of stored events of the dates from `from` to `to` (inclusive, at most 31 days).
pub async fn list_event_keys(
    store: &dyn Store,
    from: chrono::NaiveDate,
    to: chrono::NaiveDate,
) -> Result<Vec<String>> {
    let mut keys = Vec::new();
    let mut date = from.max(to - chrono::Days::new(30));
    while date <= to {
        keys.extend(
            store
                .list(&format!("{ALERTS_PREFIX}date={date}/"))
                .await?
                .into_iter()
                .filter(|k| k.ends_with(".json")),
        );
        date = date + chrono::Days::new(1);
    }
    Ok(keys)
}

/// One stored event; `None` (with a warning) when it is gone or unreadable.
pub async fn read_event(store: &dyn Store, key: &str) -> Result<Option<AlertEvent>> {
    let Some(object) = store.get(key).await? else {
        return Ok(None);
    };
    match serde_json::from_slice::<AlertEvent>(&object.body) {
        Ok(event) => Ok(Some(event)),
        Err(error) => {
            tracing::warn!(key, %error, "unreadable alert event skipped");
            Ok(None)
        }
    }
}
