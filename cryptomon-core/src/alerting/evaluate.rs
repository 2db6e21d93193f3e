//! Rules evaluated on the window at a transform's `as_of`: which conditions hold now.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::rules::{AlertConfig, Rule, RuleKind};
use crate::engine::Window;
use crate::engine::series::{Columns, mean};
use crate::error::Result;
use crate::model::{Measure, Pair, SourceName, Summary, Tick};

/// What a condition is about: a rule and a series (a source alone for `stale`, a pair alone
/// for `spread`). Ordered, so state and events come out in a stable order.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Subject {
    /// The rule's name.
    pub rule: String,
    /// The source (`None` for a spread, which spans sources).
    pub source: Option<SourceName>,
    /// The pair (`None` for a stale source).
    pub pair: Option<Pair>,
    /// The measure (`None` for rules on sources or spreads).
    pub measure: Option<Measure>,
}

impl Subject {
    /// `rule/source/pair/measure`, with `-` for what the subject has not: a key fragment.
    pub fn id(&self) -> String {
        format!(
            "{}/{}/{}/{}",
            self.rule,
            self.source.as_ref().map_or("-", |s| s.as_str()),
            self.pair.as_ref().map_or("-", |p| p.as_str()),
            self.measure.map_or("-", |m| m.as_str()),
        )
    }
}

/// A condition that holds at `as_of`.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    /// What it is about.
    pub subject: Subject,
    /// The observed value (price, volume, spread in bps, or minutes since the last snapshot).
    pub value: f64,
    /// What it was compared with (the mean, the level, the earlier price, the limit).
    pub reference: f64,
}

impl Condition {
    /// value / reference.
    pub fn ratio(&self) -> f64 {
        self.value / self.reference
    }
}

/// Every condition of `config`'s rules that holds at `as_of` on `window` (trimmed to the 24 h
/// before `as_of`) and `summary` (of the same window). `last_snapshot` is each source's latest
/// stored tick and `now` the clock, for `stale`. Sorted by subject.
pub fn evaluate(
    config: &AlertConfig,
    window: &Window,
    summary: &Summary,
    as_of: Tick,
    last_snapshot: &BTreeMap<SourceName, Tick>,
    now: Tick,
) -> Result<Vec<Condition>> {
    let mut out = Vec::new();
    if window.is_empty() {
        return Ok(out);
    }
    let columns = Columns::of(window)?;
    let offsets = window.offsets();
    for rule in &config.rules {
        match &rule.kind {
            RuleKind::Spread { bps } => {
                for s in &summary.spreads {
                    if rule.pair.matches(s.pair.as_str()) && s.spread_bps > *bps {
                        out.push(Condition {
                            subject: subject(rule, None, Some(&s.pair), None),
                            value: s.spread_bps,
                            reference: *bps,
                        });
                    }
                }
            }
            RuleKind::Stale { minutes } => {
                for (source, last) in last_snapshot {
                    let age = (now.unix() - last.unix()) as f64 / 60.0;
                    if rule.source.matches(source.as_str()) && age >= f64::from(*minutes) {
                        out.push(Condition {
                            subject: subject(rule, Some(source), None, None),
                            value: age,
                            reference: f64::from(*minutes),
                        });
                    }
                }
            }
            kind => {
                for (sid, key) in window.series().iter().enumerate() {
                    if !(rule.source.matches(key.source.as_str())
                        && rule.pair.matches(key.pair.as_str()))
                    {
                        continue;
                    }
                    let rows = offsets[sid]..offsets[sid + 1];
                    let ticks = &columns.tick[rows.clone()];
                    // Series-level rules look at the sample at `as_of`: its last, if any.
                    if ticks.last() != Some(&as_of.unix()) {
                        continue;
                    }
                    let now_row = rows.end - 1;
                    let back = |minutes: u32| {
                        rows.start
                            + ticks.partition_point(|&t| t < as_of.unix() - i64::from(minutes) * 60)
                    };
                    let price = columns.price[now_row];
                    let on = |measure, value, reference| Condition {
                        subject: subject(rule, Some(&key.source), Some(&key.pair), Some(measure)),
                        value,
                        reference,
                    };
                    match kind {
                        RuleKind::Spike {
                            measure,
                            factor,
                            window_minutes,
                        } => {
                            let hour = back(*window_minutes)..now_row;
                            let (value, values) = match measure {
                                Measure::Price => (Some(price), columns.price[hour].into()),
                                Measure::Volume => {
                                    (columns.volume.get(now_row), columns.volumes(hour))
                                }
                            };
                            if let Some(value) = value
                                && !values.is_empty()
                            {
                                let m = mean(&values);
                                if m > 0.0 && value > factor * m {
                                    out.push(on(*measure, value, m));
                                }
                            }
                        }
                        RuleKind::Threshold { above, below } => {
                            if let Some(level) = above.filter(|&a| price > a) {
                                out.push(on(Measure::Price, price, level));
                            } else if let Some(level) = below.filter(|&b| price < b) {
                                out.push(on(Measure::Price, price, level));
                            }
                        }
                        RuleKind::Change {
                            pct,
                            window_minutes,
                        } => {
                            // The last sample at or before `as_of` − window, if the series
                            // reaches back that far.
                            let target = as_of.unix() - i64::from(*window_minutes) * 60;
                            let at_or_before = ticks.partition_point(|&t| t <= target);
                            if let Some(then) = at_or_before.checked_sub(1) {
                                let reference = columns.price[rows.start + then];
                                let change = (price / reference - 1.0) * 100.0;
                                if change.abs() > *pct {
                                    out.push(on(Measure::Price, price, reference));
                                }
                            }
                        }
                        // Handled above: they are not about one series.
                        RuleKind::Spread { .. } | RuleKind::Stale { .. } => {}
                    }
                }
            }
        }
    }
    out.sort_by(|a, b| a.subject.cmp(&b.subject));
    Ok(out)
}

fn subject(
    rule: &Rule,
    source: Option<&SourceName>,
    pair: Option<&Pair>,
    measure: Option<Measure>,
) -> Subject {
    Subject {
        rule: rule.name.clone(),
        source: source.cloned(),
        pair: pair.cloned(),
        measure,
    }
}
