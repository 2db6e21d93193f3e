//! Delivery rounds: every sink served at once, each attempt bounded and saved, a delivery
//! given up after its last attempt.

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, Hash, Hasher};
use std::time::Duration;

use futures::lock::Mutex;

use super::events::read_event;
use super::state::{Loaded, MAX_STATE_ATTEMPTS, load, save};
use crate::alerting::{
    ALERT_STATE_KEY, AlertEvent, AlertState, DEFAULT_DELIVERY_ATTEMPTS, DynNotifier, Notifier,
    Pending, batches,
};
use crate::error::{Error, Result};
use crate::model::Tick;
use crate::store::Store;

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
