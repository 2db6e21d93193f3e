//! Alert events and the state that turns conditions into them: fire once, respect the
//! cooldown, resolve when the condition clears.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::evaluate::{Condition, Subject};
use super::rules::AlertConfig;
use crate::model::{Measure, Pair, SourceName, Tick};

/// The schema of a stored alert event.
pub const ALERT_EVENT_SCHEMA: &str = "cryptomon.alert/v1";
/// Where events are stored: `alerts/date=YYYY-MM-DD/...`, append-only.
pub const ALERTS_PREFIX: &str = "alerts/";
/// The alert state: what is firing, when each subject last fired, deliveries still owed.
pub const ALERT_STATE_KEY: &str = "aggregates/alerts.state.json";
/// The state's format; a state of another format is set aside and started afresh.
const STATE_FORMAT: u32 = 1;

/// Where an unreadable alert state is copied before a fresh one replaces it:
/// `aggregates/alerts.state.corrupt-{YYYYMMDDTHHMMSSZ}.json`, `at` being when it was found.
pub fn corrupt_state_key(at: Tick) -> String {
    format!("aggregates/alerts.state.corrupt-{}.json", at.compact())
}

/// Whether an event starts or ends an alert.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventStatus {
    /// The condition started to hold (and the subject was not in its cooldown).
    Fired,
    /// The condition of a fired alert no longer holds.
    Resolved,
}

impl EventStatus {
    /// `fired` or `resolved`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventStatus::Fired => "fired",
            EventStatus::Resolved => "resolved",
        }
    }
}

/// One alert event, as stored under `alerts/` and delivered.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertEvent {
    /// Always `cryptomon.alert/v1`.
    pub schema: String,
    /// Fired or resolved.
    pub status: EventStatus,
    /// The rule's name.
    pub rule: String,
    /// The rule's kind (`spike`, `threshold`, `change`, `spread`, `stale`).
    pub kind: String,
    /// The source (`null` for a spread).
    pub source: Option<SourceName>,
    /// The pair (`null` for a stale source).
    pub pair: Option<Pair>,
    /// The measure (`null` for spreads and stale sources).
    pub measure: Option<Measure>,
    /// The value that fired (for a resolved event: the value when it fired).
    pub value: f64,
    /// What it was compared with.
    pub reference: f64,
    /// value / reference.
    pub ratio: f64,
    /// The tick evaluated.
    pub tick: Tick,
    /// The tick the alert fired at (for a fired event, its own tick).
    pub fired_at: Tick,
}

impl AlertEvent {
    /// The event's store key: `alerts/date=YYYY-MM-DD/{tick}.{rule}.{source}.{pair}.{measure}.{status}.json`.
    /// One subject has at most one event of a status per tick, so writing it create-only makes
    /// a re-run of the same tick a no-op.
    pub fn key(&self) -> String {
        let dash = "-";
        format!(
            "{ALERTS_PREFIX}date={}/{}.{}.{}.{}.{}.{}.json",
            self.tick.date(),
            self.tick.compact(),
            self.rule,
            self.source.as_ref().map_or(dash, |s| s.as_str()),
            self.pair.as_ref().map_or(dash, |p| p.as_str()),
            self.measure.map_or(dash, |m| m.as_str()),
            self.status.as_str(),
        )
    }

    /// The subject the event is about.
    pub fn subject(&self) -> Subject {
        Subject {
            rule: self.rule.clone(),
            source: self.source.clone(),
            pair: self.pair.clone(),
            measure: self.measure,
        }
    }

    /// One line for people: logs, Slack, SNS subjects.
    pub fn text(&self) -> String {
        let what = [
            self.source.as_ref().map(|s| s.as_str()),
            self.pair.as_ref().map(|p| p.as_str()),
            self.measure.map(|m| m.as_str()),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
        match self.status {
            EventStatus::Fired => format!(
                "[cryptomon] {} fired: {what} = {} vs {} ({:.2}x) at {}",
                self.rule,
                round(self.value),
                round(self.reference),
                self.ratio,
                self.tick
            ),
            EventStatus::Resolved => format!(
                "[cryptomon] {} resolved: {what} (fired at {}) at {}",
                self.rule, self.fired_at, self.tick
            ),
        }
    }
}

/// An event as it leaves cryptomon (webhook bodies, the HTTP API): as stored, with its key.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KeyedAlertEvent {
    /// The event.
    #[serde(flatten)]
    pub event: AlertEvent,
    /// The event's store key: unique, so a receiver can drop repeats.
    pub key: String,
}

impl From<&AlertEvent> for KeyedAlertEvent {
    fn from(event: &AlertEvent) -> Self {
        KeyedAlertEvent {
            key: event.key(),
            event: event.clone(),
        }
    }
}

fn round(x: f64) -> String {
    let s = format!("{x:.6}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// A subject that fired and has not resolved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Active {
    /// What fired.
    pub subject: Subject,
    /// The rule's kind.
    pub kind: String,
    /// The value, reference and tick it fired with.
    pub value: f64,
    /// The reference it fired with.
    pub reference: f64,
    /// When it fired.
    pub fired_at: Tick,
}

/// A delivery still owed: the event's key and where it has to go.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Pending {
    /// The event's store key.
    pub key: String,
    /// The sink's name (see `Notifier::sink`).
    pub sink: String,
    /// Attempts so far.
    pub attempts: u32,
    /// The last failure.
    pub error: String,
    /// The delivery (one message to the sink) this event was first attempted in; empty until
    /// then. A retry resends the same events under the same id, so a receiver can drop repeats.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub delivery: String,
}

/// What alerting remembers between transforms. Stored as JSON at [`ALERT_STATE_KEY`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AlertState {
    /// The state's format.
    pub format: u32,
    /// The last tick evaluated: a run for this tick or an older one changes nothing.
    pub last_tick: Option<Tick>,
    /// What is firing, by subject id.
    pub active: BTreeMap<String, Active>,
    /// When each subject last fired, by subject id: its cooldown runs from there.
    pub last_fired: BTreeMap<String, Tick>,
    /// Deliveries that failed, retried at the next transform.
    pub pending: Vec<Pending>,
}

impl AlertState {
    /// A fresh state.
    pub fn new() -> Self {
        AlertState {
            format: STATE_FORMAT,
            ..AlertState::default()
        }
    }

    /// Reads a stored state; an error saying why if it is unreadable or of another format.
    pub fn decode(bytes: &[u8]) -> std::result::Result<Self, String> {
        let state = serde_json::from_slice::<AlertState>(bytes).map_err(|e| e.to_string())?;
        if state.format != STATE_FORMAT {
            return Err(format!(
                "format {} is not {STATE_FORMAT}, the one this version reads",
                state.format
            ));
        }
        Ok(state)
    }

    /// A state rebuilt from stored events (in any order): a subject whose latest event fired is
    /// firing, and each subject's latest firing starts its cooldown. Nothing is owed: which
    /// deliveries were still owed is not in the events.
    pub fn from_events(events: &[AlertEvent]) -> Self {
        let mut sorted: Vec<&AlertEvent> = events.iter().collect();
        sorted.sort_by_key(|e| (e.tick, e.status));
        let mut state = AlertState::new();
        for e in sorted {
            let id = e.subject().id();
            match e.status {
                EventStatus::Fired => {
                    state.active.insert(
                        id.clone(),
                        Active {
                            subject: e.subject(),
                            kind: e.kind.clone(),
                            value: e.value,
                            reference: e.reference,
                            fired_at: e.fired_at,
                        },
                    );
                    state.last_fired.insert(id, e.fired_at);
                }
                EventStatus::Resolved => {
                    state.active.remove(&id);
                }
            }
        }
        state
    }

    /// The state as JSON.
    pub fn encode(&self) -> Vec<u8> {
        // A map of plain values: serialising cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Takes in the conditions holding at `as_of` and returns the events they cause:
    ///
    /// - a condition whose subject is not firing fires, unless the subject fired less than its
    ///   rule's cooldown ago;
    /// - a firing subject whose condition no longer holds resolves;
    /// - a firing subject whose rule is gone from the config is forgotten, silently;
    /// - a tick before the last one evaluated changes nothing (a re-run of a past tick).
    pub fn step(
        &mut self,
        config: &AlertConfig,
        conditions: &[Condition],
        as_of: Tick,
    ) -> Vec<AlertEvent> {
        self.step_at(config, conditions, as_of, as_of)
    }

    /// [`step`](Self::step) evaluated at `as_of` (the later of the data's tick and the clock),
    /// with events about the data dated `data_tick`: only `stale` events carry the clock's
    /// tick, so a spike found in yesterday's data is dated yesterday.
    pub fn step_at(
        &mut self,
        config: &AlertConfig,
        conditions: &[Condition],
        as_of: Tick,
        data_tick: Tick,
    ) -> Vec<AlertEvent> {
        let dated = |kind: &str| if kind == "stale" { as_of } else { data_tick };
        // An older data tick (a re-run of a past transform) changes nothing. The same data
        // tick is evaluated again: the clock may have moved (stale sources), and what already
        // fired is active, so nothing fires twice.
        if self.last_tick.is_some_and(|t| t > data_tick) {
            return Vec::new();
        }
        self.last_tick = Some(data_tick);
        let rule = |name: &str| config.rules.iter().find(|r| r.name == name);
        self.active.retain(|_, a| rule(&a.subject.rule).is_some());

        let mut events = Vec::new();
        let mut holding = std::collections::BTreeSet::new();
        for c in conditions {
            let Some(r) = rule(&c.subject.rule) else {
                continue;
            };
            let id = c.subject.id();
            holding.insert(id.clone());
            if self.active.contains_key(&id) {
                continue;
            }
            let kind = r.kind.as_str().to_owned();
            // Cooldowns run on the events' own time: data time, or the clock for `stale`.
            let tick = dated(&kind);
            let cooling = self.last_fired.get(&id).is_some_and(|&last| {
                tick.unix() - last.unix() < i64::from(r.cooldown_minutes) * 60
            });
            if cooling {
                continue;
            }
            events.push(event(
                EventStatus::Fired,
                &c.subject,
                &kind,
                c.value,
                c.reference,
                tick,
                tick,
            ));
            self.active.insert(
                id.clone(),
                Active {
                    subject: c.subject.clone(),
                    kind,
                    value: c.value,
                    reference: c.reference,
                    fired_at: tick,
                },
            );
            self.last_fired.insert(id, tick);
        }
        let cleared: Vec<String> = self
            .active
            .keys()
            .filter(|id| !holding.contains(*id))
            .cloned()
            .collect();
        for id in cleared {
            if let Some(a) = self.active.remove(&id) {
                events.push(event(
                    EventStatus::Resolved,
                    &a.subject,
                    &a.kind,
                    a.value,
                    a.reference,
                    dated(&a.kind),
                    a.fired_at,
                ));
            }
        }
        // A cooldown longer than the window is not allowed, so older entries are done with.
        let horizon = data_tick.unix() - i64::from(crate::engine::WINDOW_MINUTES) * 60;
        self.last_fired.retain(|_, t| t.unix() >= horizon);
        events.sort_by_key(AlertEvent::key);
        events
    }
}

fn event(
    status: EventStatus,
    subject: &Subject,
    kind: &str,
    value: f64,
    reference: f64,
    tick: Tick,
    fired_at: Tick,
) -> AlertEvent {
    AlertEvent {
        schema: ALERT_EVENT_SCHEMA.to_owned(),
        status,
        rule: subject.rule.clone(),
        kind: kind.to_owned(),
        source: subject.source.clone(),
        pair: subject.pair.clone(),
        measure: subject.measure,
        value,
        reference,
        ratio: value / reference,
        tick,
        fired_at,
    }
}
