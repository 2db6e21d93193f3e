//! Splitting the events owed to a sink into deliveries that fit its size limit. Pure.

use std::ops::Range;

use super::events::AlertEvent;

/// A separator's bytes between two events in a message (a comma, or an escaped newline).
const SEPARATOR_BYTES: usize = 2;

/// How `events` split for a sink.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Split {
    /// The deliveries, as ranges of the events, in order; each message is within the limit.
    pub batches: Vec<Range<usize>>,
    /// The events whose message alone is over the limit, with that size: they can never go.
    pub too_large: Vec<(usize, usize)>,
}

/// Splits `events` (kept in order) into consecutive runs whose message, as `size` measures
/// it, is at most `limit` bytes, filling each as far as it goes.
///
/// Each event is measured alone once; a run is filled by what its events add alone, then
/// measured whole and halved while over the limit, since a message's shape can change with
/// its count (an SNS subject names one event, or counts many).
pub fn split(events: &[AlertEvent], limit: usize, size: impl Fn(&[AlertEvent]) -> usize) -> Split {
    let empty = size(&[]);
    let mut split = Split::default();
    let mut start = 0;
    let mut filled = empty;
    for (i, event) in events.iter().enumerate() {
        let alone = size(std::slice::from_ref(event));
        if alone > limit {
            split.fit(events, start..i, limit, &size);
            split.too_large.push((i, alone));
            (start, filled) = (i + 1, empty);
            continue;
        }
        let adds = alone.saturating_sub(empty) + SEPARATOR_BYTES;
        if i > start && filled + adds > limit {
            split.fit(events, start..i, limit, &size);
            (start, filled) = (i, empty);
        }
        filled += adds;
    }
    split.fit(events, start..events.len(), limit, &size);
    split
}

impl Split {
    /// Adds the run `range`, halved until each part measures within `limit`.
    fn fit(
        &mut self,
        events: &[AlertEvent],
        range: Range<usize>,
        limit: usize,
        size: &impl Fn(&[AlertEvent]) -> usize,
    ) {
        if range.is_empty() {
            return;
        }
        if range.len() == 1 || size(&events[range.clone()]) <= limit {
            self.batches.push(range);
            return;
        }
        let middle = range.start + range.len() / 2;
        self.fit(events, range.start..middle, limit, size);
        self.fit(events, middle..range.end, limit, size);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerting::EventStatus;
    use crate::model::Tick;

    fn event(rule: &str) -> AlertEvent {
        let tick = Tick::parse("2026-11-27T12:00:00Z").unwrap();
        AlertEvent {
            schema: "cryptomon.alert/v1".into(),
            status: EventStatus::Fired,
            rule: rule.into(),
            kind: "threshold".into(),
            source: None,
            pair: None,
            measure: None,
            value: 2.0,
            reference: 1.0,
            ratio: 2.0,
            tick,
            fired_at: tick,
        }
    }

    fn json_size(events: &[AlertEvent]) -> usize {
        serde_json::to_vec(events).unwrap().len()
    }

    #[test]
    fn runs_fill_up_to_the_limit_and_cover_every_event_once() {
        let events: Vec<AlertEvent> = (0..500).map(|i| event(&format!("r{i}"))).collect();
        let limit = 4096;
        let split = split(&events, limit, json_size);
        assert!(split.too_large.is_empty());
        assert!(split.batches.len() > 1);
        let mut next = 0;
        for range in &split.batches {
            assert_eq!(range.start, next, "in order, nothing skipped");
            let bytes = json_size(&events[range.clone()]);
            assert!(bytes <= limit, "{range:?}: {bytes}");
            next = range.end;
        }
        assert_eq!(next, events.len());
        // Filled, up to the estimate's slack of a byte or so per event.
        for range in &split.batches[..split.batches.len() - 1] {
            assert!(
                json_size(&events[range.clone()]) > limit * 9 / 10,
                "{range:?}"
            );
        }
    }

    #[test]
    fn an_event_too_large_alone_is_set_apart() {
        let big = "x".repeat(300);
        let events = vec![event("a"), event(&big), event("b")];
        let split = split(&events, 300, json_size);
        assert_eq!(split.too_large.len(), 1);
        assert_eq!(split.too_large[0].0, 1);
        assert!(split.too_large[0].1 > 300);
        assert_eq!(split.batches, [0..1, 2..3]);
    }
}
