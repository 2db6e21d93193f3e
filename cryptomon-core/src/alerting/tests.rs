//! Rules on small windows, and the state's transitions.

use std::collections::BTreeMap;

use super::*;
use crate::engine::{Aggregator, PolarsAggregator, Window, WindowBuilder};
use crate::model::{Measure, Pair, SourceName, Summary, Tick};

const T0: i64 = 1_796_040_000; // 2026-11-30T12:00:00Z

fn tick(m: i64) -> Tick {
    Tick::from_unix(T0 + m * 60)
}

fn config(text: &str) -> AlertConfig {
    let value: toml::Value = toml::from_str(text).unwrap();
    AlertConfig::from_toml(value.get("alerts")).unwrap()
}

/// Minutes 0..=last of (source, pair, price(m), volume(m)).
fn window(
    series: &[(&str, &str)],
    last: i64,
    value: impl Fn(usize, i64) -> (f64, Option<f64>),
) -> Window {
    let mut b = WindowBuilder::new();
    for (i, (s, p)) in series.iter().enumerate() {
        let (s, p) = (SourceName::new(s).unwrap(), Pair::new(p).unwrap());
        for m in 0..=last {
            let (price, volume) = value(i, m);
            b.push(&s, &p, tick(m), 0, price, volume);
        }
    }
    b.build().unwrap()
}

fn conditions(c: &AlertConfig, w: &Window, as_of: i64) -> Vec<Condition> {
    let summary: Summary = PolarsAggregator::default()
        .aggregate(w, tick(as_of))
        .unwrap();
    evaluate(c, w, &summary, tick(as_of), &BTreeMap::new(), tick(as_of)).unwrap()
}

const SPIKE: &str = r#"
    [[alerts.rules]]
    name = "volume-spike"
    kind = "spike"
    measure = "volume"
    cooldown_minutes = 30
"#;

#[test]
fn a_spike_is_the_summary_alert_rule() {
    // Volume 10 all hour, 45 at minute 90 on kraken only.
    let w = window(
        &[("kraken", "BTC-USD"), ("coinbase", "BTC-USD")],
        90,
        |i, m| (100.0, Some(if i == 0 && m == 90 { 45.0 } else { 10.0 })),
    );
    let got = conditions(&config(SPIKE), &w, 90);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].subject.source.as_ref().unwrap().as_str(), "kraken");
    assert_eq!(got[0].subject.measure, Some(Measure::Volume));
    assert_eq!(
        (got[0].value, got[0].reference, got[0].ratio()),
        (45.0, 10.0, 4.5)
    );
    // The summary's own alert agrees.
    let summary = PolarsAggregator::default().aggregate(&w, tick(90)).unwrap();
    assert_eq!(summary.alerts.len(), 1);
    assert_eq!(summary.alerts[0].ratio, 4.5);
}

#[test]
fn fire_once_then_resolve_then_cooldown() {
    let c = config(SPIKE);
    let mut state = AlertState::new();
    let spiking = |m: i64, at: &[i64]| {
        window(&[("kraken", "BTC-USD")], m, |_, x| {
            (100.0, Some(if at.contains(&x) { 50.0 } else { 10.0 }))
        })
    };
    // Minute 70: fires.
    let w = spiking(70, &[70]);
    let events = state.step(&c, &conditions(&c, &w, 70), tick(70));
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].status, EventStatus::Fired);
    assert_eq!(
        events[0].key(),
        "alerts/date=2026-11-30/20261130T131000Z.volume-spike.kraken.BTC-USD.volume.fired.json"
    );
    // The same tick again (a re-run): nothing.
    assert!(state.step(&c, &conditions(&c, &w, 70), tick(70)).is_empty());
    // Minute 71, still spiking: no second event.
    let w = spiking(71, &[70, 71]);
    assert!(state.step(&c, &conditions(&c, &w, 71), tick(71)).is_empty());
    // Minute 72, back to normal: resolved, with the firing's values.
    let w = spiking(72, &[70, 71]);
    let events = state.step(&c, &conditions(&c, &w, 72), tick(72));
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].status, EventStatus::Resolved);
    assert_eq!((events[0].fired_at, events[0].value), (tick(70), 50.0));
    // Minute 80, spiking again within the 30 min cooldown: suppressed.
    let w = spiking(80, &[70, 71, 80]);
    assert!(!conditions(&c, &w, 80).is_empty());
    assert!(state.step(&c, &conditions(&c, &w, 80), tick(80)).is_empty());
    // Minute 101, spiking again after the cooldown: fires.
    let w = spiking(101, &[70, 71, 80, 101]);
    let events = state.step(&c, &conditions(&c, &w, 101), tick(101));
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].status, EventStatus::Fired);
    // The state survives a round trip.
    assert_eq!(AlertState::decode(&state.encode()), Ok(state.clone()));
    // A rule removed from the config: its active alert is forgotten without an event.
    let none = config("[alerts]");
    assert!(state.step(&none, &[], tick(102)).is_empty());
    assert!(state.active.is_empty());
}

#[test]
fn threshold_change_and_patterns() {
    let c = config(
        r#"
        [[alerts.rules]]
        name = "btc-high"
        kind = "threshold"
        pair = "BTC-*"
        above = 150
        [[alerts.rules]]
        name = "low"
        kind = "threshold"
        source = "coin*"
        below = 90
        [[alerts.rules]]
        name = "move"
        kind = "change"
        pct = 10
        window_minutes = 30
        "#,
    );
    // kraken BTC climbs from 100 to 160 over 60 min; coinbase ETH falls from 100 to 85.
    let w = window(
        &[("kraken", "BTC-USD"), ("coinbase", "ETH-USD")],
        60,
        |i, m| {
            let m = m as f64;
            (if i == 0 { 100.0 + m } else { 100.0 - m / 4.0 }, None)
        },
    );
    let got = conditions(&c, &w, 60);
    let names: Vec<(String, String)> = got
        .iter()
        .map(|c| {
            (
                c.subject.rule.clone(),
                c.subject.pair.as_ref().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        names,
        [
            ("btc-high".to_owned(), "BTC-USD".to_owned()),
            ("low".to_owned(), "ETH-USD".to_owned()),
            // 160 vs 130 thirty minutes before: +23 %; ETH 85 vs 92.5: -8 %, not enough.
            ("move".to_owned(), "BTC-USD".to_owned()),
        ]
    );
    assert_eq!((got[2].value, got[2].reference), (160.0, 130.0));
}

#[test]
fn spread_and_stale() {
    let c = config(
        r#"
        [[alerts.rules]]
        name = "wide"
        kind = "spread"
        bps = 50
        [[alerts.rules]]
        name = "quiet"
        kind = "stale"
        minutes = 5
        "#,
    );
    // BTC: 100 on kraken, 101 on coinbase (100 bps); ETH: 100 and 100.1 (10 bps).
    let w = window(
        &[
            ("kraken", "BTC-USD"),
            ("coinbase", "BTC-USD"),
            ("kraken", "ETH-USD"),
            ("coinbase", "ETH-USD"),
        ],
        10,
        |i, _| ([100.0, 101.0, 100.0, 100.1][i], None),
    );
    let summary = PolarsAggregator::default().aggregate(&w, tick(10)).unwrap();
    let last: BTreeMap<SourceName, Tick> = [
        (SourceName::new("kraken").unwrap(), tick(10)),
        (SourceName::new("coinbase").unwrap(), tick(4)),
    ]
    .into();
    let got = evaluate(&c, &w, &summary, tick(10), &last, tick(10)).unwrap();
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[0].subject.rule, "quiet");
    assert_eq!(got[0].subject.source.as_ref().unwrap().as_str(), "coinbase");
    assert_eq!(got[0].value, 6.0);
    assert_eq!(got[1].subject.rule, "wide");
    assert_eq!(got[1].subject.pair.as_ref().unwrap().as_str(), "BTC-USD");
    assert!((got[1].value - 100.0).abs() < 1e-9);
    // Four minutes of silence is not five.
    let got = evaluate(&c, &w, &summary, tick(10), &last, tick(8)).unwrap();
    assert!(got.iter().all(|c| c.subject.rule != "quiet"));
}

#[test]
fn a_state_rebuilt_from_the_events_keeps_what_fired_firing() {
    let c = config(SPIKE);
    let mut state = AlertState::new();
    let spiking = |m: i64, at: &[i64]| {
        window(
            &[("kraken", "BTC-USD"), ("coinbase", "BTC-USD")],
            m,
            |i, x| {
                (
                    100.0,
                    Some(if at.contains(&(x * 10 + i as i64)) {
                        50.0
                    } else {
                        10.0
                    }),
                )
            },
        )
    };
    let mut stored = Vec::new();
    // Minute 70: both spike; minute 72: coinbase clears, kraken spikes on.
    let w = spiking(70, &[700, 701]);
    stored.extend(state.step(&c, &conditions(&c, &w, 70), tick(70)));
    let w = spiking(72, &[700, 701, 710, 720]);
    stored.extend(state.step(&c, &conditions(&c, &w, 72), tick(72)));
    assert_eq!(stored.len(), 3, "{stored:?}");

    stored.reverse(); // the store's order is not the events' order
    let rebuilt = AlertState::from_events(&stored);
    assert_eq!(rebuilt.active, state.active, "kraken alone is firing");
    assert_eq!(rebuilt.last_fired, state.last_fired);
    assert!(rebuilt.pending.is_empty());
    // Kraken still spiking at minute 73: the rebuilt state fires nothing again.
    let mut rebuilt = rebuilt;
    let w = spiking(73, &[700, 701, 710, 720, 730]);
    assert!(
        rebuilt
            .step(&c, &conditions(&c, &w, 73), tick(73))
            .is_empty()
    );
}
