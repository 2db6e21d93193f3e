//! Alert events queued for delivery as a transform leaves them: stored under `alerts/` and
//! pending in the alert state.

use bytes::Bytes;
use cryptomon_core::alerting::{
    ALERT_EVENT_SCHEMA, ALERT_STATE_KEY, AlertEvent, AlertState, EventStatus, Pending,
};
use cryptomon_core::{Measure, Pair, SourceName, Store, StoreExt, Tick};

/// `n` distinct events at the golden data's last tick, stored under their keys as a transform
/// stores them and queued for `sink` in a fresh alert state.
pub async fn queue_events(store: &dyn Store, sink: &str, n: usize) -> Vec<AlertEvent> {
    let tick = Tick::parse("2026-11-27T12:00:00Z").unwrap();
    let mut state = AlertState::new();
    let mut events = Vec::new();
    for i in 0..n {
        let event = AlertEvent {
            schema: ALERT_EVENT_SCHEMA.into(),
            status: EventStatus::Fired,
            rule: "any-price".into(),
            kind: "threshold".into(),
            source: Some(SourceName::new("kraken").unwrap()),
            pair: Some(Pair::new(&format!("C{i}-USD")).unwrap()),
            measure: Some(Measure::Price),
            value: 2.0,
            reference: 1.0,
            ratio: 2.0,
            tick,
            fired_at: tick,
        };
        store
            .put(
                &event.key(),
                Bytes::from(serde_json::to_vec(&event).unwrap()),
            )
            .await
            .unwrap();
        state.pending.push(Pending {
            key: event.key(),
            sink: sink.to_owned(),
            attempts: 0,
            error: String::new(),
            delivery: String::new(),
        });
        events.push(event);
    }
    store
        .put(ALERT_STATE_KEY, Bytes::from(state.encode()))
        .await
        .unwrap();
    events
}
