//! Alert delivery: the events a transform causes, recorded and queued for every sink, and the
//! rounds that deliver them.
//!
//! Recording runs inside the transform, after the aggregates are written: it evaluates the
//! rules, stores each new event create-only under `alerts/` (so a re-run of a tick stores
//! nothing twice) and queues a delivery per (event, sink) in the alert state. Delivery is a
//! separate round the host runs after the transform ([`deliver`]): a slow or failing receiver
//! never delays or fails the transform, and what it did not take stays queued for the next
//! round.
//!
//! A round serves every sink at once, each bounded by its own timeout and by the round's
//! budget, and writes the alert state after each attempt: a hung sink costs only its own
//! attempt, and what the others took is never sent again.

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::lock::Mutex;

use super::transform::Skipped;
use crate::alerting::{
    ALERT_STATE_KEY, ALERTS_PREFIX, AlertConfig, AlertEvent, AlertState, DEFAULT_DELIVERY_ATTEMPTS,
    DynNotifier, EventStatus, Notifier, Pending, batches, corrupt_state_key, evaluate,
};
use crate::engine::Window;
use crate::error::{Error, Result};
use crate::model::{SourceName, Summary, Tick};
use crate::store::{PutMode, Store, StoreExt, Version};

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

/// How a delivery round runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryOptions {
    /// The round's time: no attempt runs past it, whatever its sink's timeout.
    pub budget: Duration,
    /// Attempts per (event, sink) before its delivery is given up.
    pub max_attempts: u32,
}

impl Default for DeliveryOptions {
    fn default() -> Self {
        DeliveryOptions {
            budget: DEFAULT_DELIVERY_BUDGET,
            max_attempts: DEFAULT_DELIVERY_ATTEMPTS,
        }
    }
}

/// A round's budget when the host does not say.
pub const DEFAULT_DELIVERY_BUDGET: Duration = Duration::from_secs(30);

/// What a delivery round did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryReport {
    /// Events delivered, counted once per sink.
    pub delivered: usize,
    /// Deliveries that failed this round, with the sink and why (queued again unless given up).
    pub failed: Vec<(String, String)>,
    /// (event, sink) deliveries given up: out of attempts, too large for the sink, the event
    /// gone, or the sink no longer configured. Each is logged as a warning.
    pub dropped: usize,
    /// (event, sink) deliveries still queued.
    pub pending: usize,
}

/// Delivers what the alert state has queued, to every sink at once, and writes the state after
/// each attempt. Events owed to a sink are split into messages within its size limit; a message
/// that failed is resent as it was, under the same delivery id. Never fails on a sink's error:
/// it is reported and retried, up to `options.max_attempts`. Delivery is at least once: a
/// receiver can tell repeats by the delivery id and each event's `key`.
pub async fn deliver(
    store: &dyn Store,
    notifiers: &[DynNotifier],
    options: &DeliveryOptions,
) -> Result<DeliveryReport> {
    let deadline = tokio::time::Instant::now() + options.budget;
    let state = load(store, Tick::floor(chrono::Utc::now(), 1)).await?.state;
    let ledger = Ledger {
        store,
        max_attempts: options.max_attempts,
        report: Mutex::new(DeliveryReport {
            pending: state.pending.len(),
            ..DeliveryReport::default()
        }),
    };
    let sinks: Vec<String> = notifiers.iter().map(|n| n.sink()).collect();
    let orphans: Vec<Change> = state
        .pending
        .iter()
        .filter(|p| !sinks.contains(&p.sink))
        .map(|p| Change::give_up(p, "the sink is no longer configured".into()))
        .collect();
    if !orphans.is_empty() {
        ledger.commit(orphans, None).await?;
    }
    let rounds = notifiers
        .iter()
        .map(|n| deliver_to(&ledger, n.as_ref(), &state.pending, deadline));
    // Every sink's round runs to its end; a store error in one is returned after all.
    for result in futures::future::join_all(rounds).await {
        result?;
    }
    Ok(ledger.report.into_inner())
}

/// One sink's share of a round: its failed messages resent first, then the new events in
/// messages within its limit, one after the other until one fails or the budget is spent.
async fn deliver_to(
    ledger: &Ledger<'_>,
    notifier: &dyn Notifier,
    pending: &[Pending],
    deadline: tokio::time::Instant,
) -> Result<()> {
    let sink = notifier.sink();
    let mut retries: BTreeMap<&str, Vec<(&Pending, AlertEvent)>> = BTreeMap::new();
    let mut fresh: Vec<(&Pending, AlertEvent)> = Vec::new();
    let mut lost = Vec::new();
    for p in pending.iter().filter(|p| p.sink == sink) {
        match read_event(ledger.store, &p.key).await? {
            Some(event) if p.delivery.is_empty() => fresh.push((p, event)),
            Some(event) => retries.entry(&p.delivery).or_default().push((p, event)),
            None => lost.push(Change::give_up(p, "the event is gone or unreadable".into())),
        }
    }
    if !lost.is_empty() {
        ledger.commit(lost, None).await?;
    }
    let limit = notifier.max_message_bytes();
    let mut messages: Vec<Message<'_>> = Vec::new();
    for (id, entries) in retries {
        let message = Message::new(id.to_owned(), entries);
        if notifier.message_bytes(&message.events) <= limit {
            messages.push(message);
        } else {
            // The sink's limit shrank since the first attempt: split these afresh.
            fresh.extend(message.entries.into_iter().zip(message.events));
        }
    }
    messages.sort_by_key(|m| m.events.first().map(|e| (e.tick, e.key())));
    fresh.sort_by_key(|(_, e)| (e.tick, e.key()));
    let (entries, events): (Vec<&Pending>, Vec<AlertEvent>) = fresh.into_iter().unzip();
    let split = batches::split(&events, limit, |batch| notifier.message_bytes(batch));
    let too_large: Vec<Change> = split
        .too_large
        .iter()
        .map(|&(i, bytes)| {
            Change::give_up(
                entries[i],
                format!("the event alone makes a message of {bytes} bytes, over the sink's limit of {limit}"),
            )
        })
        .collect();
    if !too_large.is_empty() {
        ledger.commit(too_large, None).await?;
    }
    for range in split.batches {
        let batch: Vec<(&Pending, AlertEvent)> = entries[range.clone()]
            .iter()
            .copied()
            .zip(events[range].iter().cloned())
            .collect();
        messages.push(Message::new(delivery_id(&sink, &batch), batch));
    }

    for message in messages {
        let now = tokio::time::Instant::now();
        if now >= deadline {
            // Not attempted, so not counted: the next round starts with it.
            break;
        }
        let wait = notifier.timeout().min(deadline - now);
        let attempt = notifier.notify(&message.id, &message.events);
        let result = match tokio::time::timeout(wait, attempt).await {
            Ok(result) => result,
            Err(_) => Err(Error::Delivery {
                sink: sink.clone(),
                message: format!("no answer within {} ms", wait.as_millis()),
            }),
        };
        let failure = result.err().map(|e| e.to_string());
        match &failure {
            None => tracing::info!(
                sink,
                delivery = message.id,
                events = message.events.len(),
                "alerts delivered"
            ),
            Some(error) => tracing::warn!(
                sink,
                delivery = message.id,
                events = message.events.len(),
                error,
                "alert delivery attempt failed"
            ),
        }
        let changes = message
            .entries
            .iter()
            .map(|p| Change {
                key: p.key.clone(),
                sink: sink.clone(),
                outcome: match &failure {
                    None => Outcome::Delivered,
                    Some(error) => Outcome::Failed {
                        delivery: message.id.clone(),
                        attempts_before: p.attempts,
                        error: error.clone(),
                    },
                },
            })
            .collect();
        ledger
            .commit(changes, failure.clone().map(|f| (sink.clone(), f)))
            .await?;
        if failure.is_some() {
            // The sink is failing: the rest waits for the next round rather than fail too.
            break;
        }
    }
    Ok(())
}

/// One message to a sink: its id, the queue entries it carries, and their events.
struct Message<'a> {
    id: String,
    entries: Vec<&'a Pending>,
    events: Vec<AlertEvent>,
}

impl<'a> Message<'a> {
    fn new(id: String, batch: Vec<(&'a Pending, AlertEvent)>) -> Self {
        let (entries, events) = batch.into_iter().unzip();
        Message {
            id,
            entries,
            events,
        }
    }
}

/// A new delivery's id: a digest of the sink and the events' keys. It is stored with each entry
/// at the first attempt; being derived from what is sent, it is the same again should that
/// write be lost.
fn delivery_id(sink: &str, batch: &[(&Pending, AlertEvent)]) -> String {
    let mut hasher = foldhash::quality::FixedState::with_seed(0x6372_7970_746f_6d6f).build_hasher();
    sink.hash(&mut hasher);
    for (p, _) in batch {
        p.key.hash(&mut hasher);
    }
    format!("dlv_{:016x}", hasher.finish())
}

/// What happened to one (event, sink) delivery.
#[derive(Debug, Clone)]
struct Change {
    key: String,
    sink: String,
    outcome: Outcome,
}

#[derive(Debug, Clone)]
enum Outcome {
    Delivered,
    /// An attempt failed; `attempts_before` is the count it started from, so applying the
    /// change twice (a conflict, a lost write response) counts it once.
    Failed {
        delivery: String,
        attempts_before: u32,
        error: String,
    },
    /// It can never go.
    GiveUp {
        error: String,
    },
}

impl Change {
    fn give_up(p: &Pending, error: String) -> Self {
        Change {
            key: p.key.clone(),
            sink: p.sink.clone(),
            outcome: Outcome::GiveUp { error },
        }
    }
}

/// Writes a round's changes to the alert state, one attempt at a time.
struct Ledger<'a> {
    store: &'a dyn Store,
    max_attempts: u32,
    report: Mutex<DeliveryReport>,
}

impl Ledger<'_> {
    /// Applies `changes` to the state as it is now (a transform may have queued more, another
    /// round recorded its own attempts), conditionally, re-reading and applying them again on a
    /// conflict. `failure` is the failed attempt to report, if that is what they are.
    async fn commit(&self, changes: Vec<Change>, failure: Option<(String, String)>) -> Result<()> {
        // Held across the write: this round's sinks write one after the other, not against
        // each other.
        let mut report = self.report.lock().await;
        for _ in 0..MAX_STATE_ATTEMPTS {
            let now = Tick::floor(chrono::Utc::now(), 1);
            let Loaded {
                mut state, version, ..
            } = load(self.store, now).await?;
            let given_up = apply(&mut state, &changes, self.max_attempts);
            match save(self.store, &state, version).await {
                Ok(_) => {
                    for (p, why) in &given_up {
                        tracing::warn!(
                            event = p.key,
                            sink = p.sink,
                            attempts = p.attempts,
                            last_error = why,
                            "alert delivery given up"
                        );
                    }
                    report.delivered += changes
                        .iter()
                        .filter(|c| matches!(c.outcome, Outcome::Delivered))
                        .count();
                    report.failed.extend(failure);
                    report.dropped += given_up.len();
                    report.pending = state.pending.len();
                    return Ok(());
                }
                Err(Error::Precondition { .. } | Error::AlreadyExists { .. }) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(Error::Precondition {
            key: ALERT_STATE_KEY.into(),
        })
    }
}

/// Applies `changes` to `state`'s queue; returns the entries given up, with the last error.
/// Entries no longer queued (delivered or given up elsewhere) are left alone.
fn apply(state: &mut AlertState, changes: &[Change], max_attempts: u32) -> Vec<(Pending, String)> {
    let by_entry: HashMap<(&str, &str), &Outcome> = changes
        .iter()
        .map(|c| ((c.key.as_str(), c.sink.as_str()), &c.outcome))
        .collect();
    let mut given_up = Vec::new();
    state
        .pending
        .retain_mut(|p| match by_entry.get(&(p.key.as_str(), p.sink.as_str())) {
            None => true,
            Some(Outcome::Delivered) => false,
            Some(Outcome::GiveUp { error }) => {
                given_up.push((p.clone(), error.clone()));
                false
            }
            Some(Outcome::Failed {
                delivery,
                attempts_before,
                error,
            }) => {
                p.attempts = p.attempts.max(attempts_before + 1);
                p.delivery.clone_from(delivery);
                p.error.clone_from(error);
                if p.attempts >= max_attempts {
                    given_up.push((p.clone(), error.clone()));
                    false
                } else {
                    true
                }
            }
        });
    given_up
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

/// The alert state as read, and the unreadable one it replaced, if any.
struct Loaded {
    state: AlertState,
    version: Option<Version>,
    set_aside: Option<Skipped>,
}

/// Reads the alert state. One that cannot be read (not JSON, or of another format) is never
/// just dropped: its bytes are copied to [`corrupt_state_key`] (`now` naming the copy), and a
/// state rebuilt from the stored events replaces it, so what fired and has not resolved stays
/// firing rather than fire again.
async fn load(store: &dyn Store, now: Tick) -> Result<Loaded> {
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

async fn save(store: &dyn Store, state: &AlertState, version: Option<Version>) -> Result<Version> {
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
    /// a notifier for each webhook (secrets read from `secrets` now).
    #[cfg(feature = "webhooks")]
    pub fn from_config(
        config: &crate::config::Config,
        secrets: &crate::secrets::Secrets,
    ) -> Result<Self> {
        let alerts = AlertConfig::from_toml(config.alerts.as_ref())?;
        let notifiers = crate::alerting::webhook_notifiers(&alerts, secrets)?;
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

    /// One delivery round to every notifier ([`deliver`]) within `budget`, with the config's
    /// attempts per delivery; nothing to do without notifiers.
    pub async fn deliver(&self, store: &dyn Store, budget: Duration) -> Result<DeliveryReport> {
        if self.notifiers.is_empty() {
            return Ok(DeliveryReport::default());
        }
        let options = DeliveryOptions {
            budget,
            max_attempts: self.config.delivery_attempts,
        };
        deliver(store, &self.notifiers, &options).await
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

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(key: &str, sink: &str, attempts: u32) -> Pending {
        Pending {
            key: key.into(),
            sink: sink.into(),
            attempts,
            error: String::new(),
            delivery: String::new(),
        }
    }

    #[test]
    fn an_attempt_applied_twice_counts_once_and_the_last_one_gives_up() {
        let mut state = AlertState::new();
        state.pending = vec![
            pending("a", "hook", 1),
            pending("b", "hook", 2),
            pending("a", "sns", 0),
        ];
        let failed = |key: &str, before: u32| Change {
            key: key.into(),
            sink: "hook".into(),
            outcome: Outcome::Failed {
                delivery: "dlv_1".into(),
                attempts_before: before,
                error: "answered 500".into(),
            },
        };
        let changes = [failed("a", 1), failed("b", 2)];
        let given_up = apply(&mut state, &changes, 3);
        assert_eq!(given_up.len(), 1);
        assert_eq!(
            (given_up[0].0.key.as_str(), given_up[0].0.attempts),
            ("b", 3)
        );
        assert_eq!(given_up[0].1, "answered 500");
        // Applied again after a conflict (or a lost write response): nothing more counted.
        assert!(apply(&mut state, &changes, 3).is_empty());
        assert_eq!(state.pending.len(), 2);
        assert_eq!(
            (
                state.pending[0].attempts,
                state.pending[0].delivery.as_str()
            ),
            (2, "dlv_1")
        );
        assert_eq!(
            state.pending[1],
            pending("a", "sns", 0),
            "another sink's entry untouched"
        );
        // Delivered elsewhere meanwhile: the entry is gone and stays gone.
        let delivered = Change {
            key: "a".into(),
            sink: "hook".into(),
            outcome: Outcome::Delivered,
        };
        apply(&mut state, &[delivered], 3);
        assert_eq!(state.pending, [pending("a", "sns", 0)]);
        assert!(apply(&mut state, &changes, 3).is_empty());
    }
}
