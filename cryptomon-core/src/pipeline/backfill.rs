//! The backfill pipeline: the exchanges' one-minute candles → one backfill object per source and
//! UTC hour, written create-if-absent under `backfill/`, for a window that starts empty.
//!
//! For each source: list the hours already written (a rerun skips them: resumable and
//! idempotent), then a week of missing hours at a time, fetch each pair's candles for those
//! hours plus the 24 hours before them, and build and write each hour. A sample's price is its candle's close; its
//! `volume_24h` is the sum of the 1,440 candle volumes ending with its minute when every one of
//! them is there, else `null`. Backfill never writes `raw/`: the transform, which reads both,
//! prefers a collected snapshot's sample to a backfilled one.
//!
//! An hour is written if at least one pair has a candle in it and no pair failed in a way a
//! later run could fix (a rate limit, a timeout): such an hour is left for the next run rather
//! than stored with a hole forever. What an hour lacks is listed in the object's `missing` and,
//! summed up, in the [`BackfillReport`].

use std::collections::{BTreeMap, HashSet};

use bytes::Bytes;
use chrono::Utc;
use futures::future::join_all;

use crate::candle_source::{CandleSource, DynCandleSource, MinuteCandle};
use crate::config::BackfillConfig;
use crate::error::Result;
use crate::keys::{backfill_key, backfill_source_prefix, parse_backfill_key};
use crate::model::{
    Backfill, BackfillSample, BackfillSeries, HOUR, MINUTE, Missing, Pair, SourceName, Tick,
};
use crate::store::{Store, StoreExt};

use super::window_empty::window_is_empty;

/// Minutes summed into a sample's `volume_24h`.
pub const VOLUME_MINUTES: i64 = 1440;

/// Hours fetched and written together: a week, so a long backfill holds a week of candles per
/// pair and refetches a day per week for the volumes of each week's first hours.
const CHUNK_HOURS: i64 = 168;

/// What became of one hour of one source.
#[derive(Debug, Clone, PartialEq)]
pub enum HourOutcome {
    /// Written now, with this many samples.
    Written {
        /// Samples in the object, all pairs together.
        samples: usize,
    },
    /// Already in the store; not fetched again.
    Present,
    /// Not written, and why; a later run tries it again.
    NotWritten(String),
}

/// One hour of one source in a [`BackfillReport`].
#[derive(Debug, Clone, PartialEq)]
pub struct HourReport {
    /// The source.
    pub source: SourceName,
    /// The hour's first second.
    pub hour: Tick,
    /// What became of it.
    pub outcome: HourOutcome,
}

/// Something a backfill could not fill, summed over the hours it concerns.
#[derive(Debug, Clone, PartialEq)]
pub struct Unfilled {
    /// The source.
    pub source: SourceName,
    /// The pair; `None` when the whole source is concerned.
    pub pair: Option<Pair>,
    /// Why.
    pub reason: String,
    /// Hours it concerns.
    pub hours: usize,
    /// Minutes it concerns; 0 when whole hours are.
    pub minutes: usize,
}

/// What one backfill did.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BackfillReport {
    /// Every hour of every source asked for, by source then hour.
    pub hours: Vec<HourReport>,
    /// What could not be filled, by source, pair and reason.
    pub unfilled: Vec<Unfilled>,
}

impl BackfillReport {
    /// Hours written now.
    pub fn written(&self) -> usize {
        self.count(|o| matches!(o, HourOutcome::Written { .. }))
    }

    /// Hours found already written.
    pub fn present(&self) -> usize {
        self.count(|o| *o == HourOutcome::Present)
    }

    /// Hours neither written nor present.
    pub fn not_written(&self) -> usize {
        self.count(|o| matches!(o, HourOutcome::NotWritten(_)))
    }

    /// Whether there was something to fetch, none of it could be, and no hour was there
    /// already: the one outcome a caller should treat as a failure.
    pub fn fetched_nothing(&self) -> bool {
        self.written() == 0 && self.present() == 0 && self.not_written() > 0
    }

    fn count(&self, f: impl Fn(&HourOutcome) -> bool) -> usize {
        self.hours.iter().filter(|h| f(&h.outcome)).count()
    }
}

/// Where a backfill tells its progress: a progress bar, log lines, nothing (`()`).
pub trait BackfillProgress: Send + Sync {
    /// `hours` hours of `source` are to be fetched.
    fn planned(&self, source: &SourceName, hours: usize) {
        let _ = (source, hours);
    }

    /// The candles of `pair` are being fetched.
    fn fetching(&self, source: &SourceName, pair: &Pair) {
        let _ = (source, pair);
    }

    /// One planned hour is done.
    fn done(&self, report: &HourReport) {
        let _ = report;
    }
}

impl BackfillProgress for () {}

/// Backfills the last `hours` whole UTC hours before `now` (the hour holding `now` excluded,
/// as the collector fills it) from every source, the sources at once, each at its exchange's
/// rate. Fails only on a store error; a source's failures are in the report.
pub async fn backfill(
    store: &dyn Store,
    sources: &[DynCandleSource],
    hours: u32,
    now: Tick,
    progress: &dyn BackfillProgress,
) -> Result<BackfillReport> {
    let end = Tick::from_unix(now.unix().div_euclid(HOUR) * HOUR);
    let wanted: Vec<Tick> = (1..=i64::from(hours))
        .rev()
        .map(|i| end.add_secs(-i * HOUR))
        .collect();
    let results = join_all(
        sources
            .iter()
            .map(|s| backfill_source(store, s.as_ref(), &wanted, now, progress)),
    )
    .await;
    let mut report = BackfillReport::default();
    for result in results {
        let (hours, unfilled) = result?;
        report.hours.extend(hours);
        report.unfilled.extend(unfilled);
    }
    Ok(report)
}

/// [`backfill`] for a program starting up (`serve`, the transformer): runs only if `config`
/// turns it on (`[backfill] on_empty`) and the window is empty, for `config.hours`. `None`
/// when it did not run.
pub async fn backfill_on_empty(
    store: &dyn Store,
    sources: &[DynCandleSource],
    config: &BackfillConfig,
    now: Tick,
    progress: &dyn BackfillProgress,
) -> Result<Option<BackfillReport>> {
    if !config.on_empty || sources.is_empty() || !window_is_empty(store, now).await? {
        return Ok(None);
    }
    backfill(store, sources, config.hours, now, progress)
        .await
        .map(Some)
}

/// One source's hours and what it could not fill.
async fn backfill_source(
    store: &dyn Store,
    source: &dyn CandleSource,
    wanted: &[Tick],
    now: Tick,
    progress: &dyn BackfillProgress,
) -> Result<(Vec<HourReport>, Vec<Unfilled>)> {
    let name = source.name();
    let present: HashSet<Tick> = store
        .list(&backfill_source_prefix(name))
        .await?
        .iter()
        .filter_map(|key| parse_backfill_key(key))
        .map(|k| k.hour)
        .collect();
    let report = |hour: Tick, outcome| HourReport {
        source: name.clone(),
        hour,
        outcome,
    };
    let mut hours: Vec<HourReport> = Vec::new();
    let mut unfilled = Tally::new(name);
    let todo: Vec<Tick> = wanted
        .iter()
        .copied()
        .filter(|h| !present.contains(h))
        .collect();
    hours.extend(
        wanted
            .iter()
            .filter(|h| present.contains(h))
            .map(|&h| report(h, HourOutcome::Present)),
    );
    if todo.is_empty() {
        return Ok((hours, unfilled.finish()));
    }
    progress.planned(name, todo.len());
    let pairs = source.pairs();
    if pairs.is_empty() {
        let why = "no pairs listed (pairs = \"all\" is not backfilled): list the pairs";
        unfilled.add(None, why, todo.len(), 0);
        for hour in todo {
            let done = report(hour, HourOutcome::NotWritten(why.to_owned()));
            progress.done(&done);
            hours.push(done);
        }
        hours.sort_by_key(|h| h.hour);
        return Ok((hours, unfilled.finish()));
    }
    let now_minute = Tick::from_unix(now.unix().div_euclid(MINUTE) * MINUTE);
    let reach = source.reach_minutes().map(|(minutes, why)| {
        // The most recent of those minutes is the one still open.
        let earliest = now_minute.add_secs(-(i64::from(minutes) - 1) * MINUTE);
        (earliest, format!("{why} (none before {earliest})"))
    });
    // A chunk at a time, so memory stays bounded and an interrupted run keeps what it wrote.
    let mut rest: &[Tick] = &todo;
    while let Some(&first) = rest.first() {
        let end = first.add_secs(CHUNK_HOURS * HOUR);
        let (chunk, next) = rest.split_at(rest.partition_point(|h| *h < end));
        let fetched = fetch_chunk(source, chunk, reach.as_ref(), progress).await;
        let fetched_at = Utc::now();
        for &hour in chunk {
            let outcome = match build_hour(hour, &fetched, reach.as_ref(), &mut unfilled) {
                HourBuild::Retry(why) => HourOutcome::NotWritten(why),
                HourBuild::Empty => HourOutcome::NotWritten("no candle for any pair".to_owned()),
                HourBuild::Ready(series, missing) => {
                    let object = Backfill::new(name.clone(), hour, fetched_at, series, missing);
                    write(store, &object).await?
                }
            };
            let done = report(hour, outcome);
            progress.done(&done);
            hours.push(done);
        }
        rest = next;
    }
    hours.sort_by_key(|h| h.hour);
    Ok((hours, unfilled.finish()))
}

/// Every pair's candles for the hours of `chunk` (sorted) and the day before them, within the
/// exchange's reach, each pair in one call.
async fn fetch_chunk(
    source: &dyn CandleSource,
    chunk: &[Tick],
    reach: Option<&(Tick, String)>,
    progress: &dyn BackfillProgress,
) -> Vec<(Pair, Result<PairCandles>)> {
    let (Some(first), Some(last)) = (chunk.first(), chunk.last()) else {
        return Vec::new();
    };
    let mut from = first.add_secs(-(VOLUME_MINUTES - 1) * MINUTE);
    if let Some((earliest, _)) = reach {
        from = from.max(*earliest);
    }
    let to = last.add_secs(HOUR);
    let mut fetched = Vec::new();
    for pair in source.pairs() {
        progress.fetching(source.name(), &pair);
        let candles = if from < to {
            source
                .candles(&pair, from, to)
                .await
                .map(|c| PairCandles::new(from, to, &c))
        } else {
            // Every minute is beyond the exchange's reach: nothing to ask for.
            Ok(PairCandles::new(from, to, &[]))
        };
        fetched.push((pair, candles));
    }
    fetched
}

/// Validates and writes `object` unless its key is taken; an object that fails validation (a
/// candle source breaking its contract) is not written, and says why.
async fn write(store: &dyn Store, object: &Backfill) -> Result<HourOutcome> {
    if let Err(e) = object.validate() {
        return Ok(HourOutcome::NotWritten(e.to_string()));
    }
    let key = backfill_key(&object.source, object.hour);
    let samples = object.series.iter().map(|s| s.samples.len()).sum();
    Ok(
        if store
            .put_if_absent(&key, Bytes::from(object.to_json()))
            .await?
        {
            HourOutcome::Written { samples }
        } else {
            HourOutcome::Present
        },
    )
}

/// What one hour is made of.
enum HourBuild {
    /// A pair failed in a way a later run may fix: the hour waits for it.
    Retry(String),
    /// No pair has a candle in the hour.
    Empty,
    /// The series and what they lack.
    Ready(Vec<BackfillSeries>, Vec<Missing>),
}

/// The series of `hour` from every pair's candles, tallying what is missing into `unfilled`.
fn build_hour(
    hour: Tick,
    fetched: &[(Pair, Result<PairCandles>)],
    reach: Option<&(Tick, String)>,
    unfilled: &mut Tally,
) -> HourBuild {
    let (mut series, mut missing) = (Vec::new(), Vec::new());
    let mut retry = None;
    for (pair, candles) in fetched {
        let candles = match candles {
            Ok(c) => c,
            Err(e) => {
                let why = e.to_string();
                if e.is_retryable() && retry.is_none() {
                    retry = Some(format!("{pair}: {why}; a later run tries again"));
                }
                unfilled.add(Some(pair), &why, 1, 0);
                missing.push(Missing {
                    pair: pair.clone(),
                    reason: why,
                });
                continue;
            }
        };
        let minutes = (0..HOUR / MINUTE).map(|i| hour.add_secs(i * MINUTE));
        let (mut samples, mut gaps, mut unreachable) = (Vec::new(), Vec::new(), 0);
        for minute in minutes {
            match candles.at(minute) {
                Some(c) => samples.push(BackfillSample {
                    tick: minute,
                    price: c.close,
                    volume_24h: candles.volume_24h(minute),
                }),
                None if reach.is_some_and(|(earliest, _)| minute < *earliest) => {
                    unreachable += 1;
                }
                None => gaps.push(minute),
            }
        }
        if unreachable > 0
            && let Some((_, why)) = reach
        {
            unfilled.add(Some(pair), why, 1, unreachable);
            missing.push(Missing {
                pair: pair.clone(),
                reason: why.clone(),
            });
        }
        if !gaps.is_empty() {
            let why = "the exchange returned no candle for some minutes (no trade, or not kept)";
            unfilled.add(Some(pair), why, 1, gaps.len());
            missing.push(Missing {
                pair: pair.clone(),
                reason: format!("exchange returned no candle for {}", ranges(&gaps)),
            });
        }
        if !samples.is_empty() {
            series.push(BackfillSeries {
                pair: pair.clone(),
                samples,
            });
        }
    }
    match (retry, series.is_empty()) {
        (Some(why), _) => HourBuild::Retry(why),
        (None, true) => HourBuild::Empty,
        (None, false) => HourBuild::Ready(series, missing),
    }
}

/// Minutes as `HH:MM` ranges: `13:05-13:09, 13:30`.
fn ranges(minutes: &[Tick]) -> String {
    let hm = |t: Tick| t.to_datetime().format("%H:%M").to_string();
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < minutes.len() {
        let mut j = i;
        while j + 1 < minutes.len() && minutes[j + 1].unix() == minutes[j].unix() + MINUTE {
            j += 1;
        }
        out.push(if i == j {
            hm(minutes[i])
        } else {
            format!("{}-{}", hm(minutes[i]), hm(minutes[j]))
        });
        i = j + 1;
    }
    out.join(", ")
}

/// One pair's candles over the fetched range, by minute.
pub(crate) struct PairCandles {
    from: Tick,
    by_minute: Vec<Option<MinuteCandle>>,
}

impl PairCandles {
    /// `candles` placed by minute in `[from, to)`; any outside is ignored.
    pub(crate) fn new(from: Tick, to: Tick, candles: &[MinuteCandle]) -> Self {
        let len = usize::try_from((to.unix() - from.unix()).max(0) / MINUTE).unwrap_or(0);
        let mut by_minute = vec![None; len];
        for c in candles {
            if let Some(slot) = Self::index(from, len, c.tick).and_then(|i| by_minute.get_mut(i)) {
                *slot = Some(*c);
            }
        }
        PairCandles { from, by_minute }
    }

    fn index(from: Tick, len: usize, at: Tick) -> Option<usize> {
        let offset = at.unix() - from.unix();
        if offset < 0 || offset % MINUTE != 0 {
            return None;
        }
        usize::try_from(offset / MINUTE).ok().filter(|&i| i < len)
    }

    /// The candle opening at `minute`.
    pub(crate) fn at(&self, minute: Tick) -> Option<&MinuteCandle> {
        Self::index(self.from, self.by_minute.len(), minute)
            .and_then(|i| self.by_minute[i].as_ref())
    }

    /// The sum of the volumes of the [`VOLUME_MINUTES`] candles ending with `minute`, if every
    /// one of them was fetched and has a volume.
    pub(crate) fn volume_24h(&self, minute: Tick) -> Option<f64> {
        let last = Self::index(self.from, self.by_minute.len(), minute)?;
        let first = last.checked_sub(usize::try_from(VOLUME_MINUTES - 1).ok()?)?;
        self.by_minute[first..=last]
            .iter()
            .map(|c| c.and_then(|c| c.volume))
            .sum()
    }
}

/// What a source could not fill, summed by pair and reason.
struct Tally {
    source: SourceName,
    entries: BTreeMap<(Option<Pair>, String), (usize, usize)>,
}

impl Tally {
    fn new(source: &SourceName) -> Self {
        Tally {
            source: source.clone(),
            entries: BTreeMap::new(),
        }
    }

    fn add(&mut self, pair: Option<&Pair>, reason: &str, hours: usize, minutes: usize) {
        let entry = self
            .entries
            .entry((pair.cloned(), reason.to_owned()))
            .or_default();
        entry.0 += hours;
        entry.1 += minutes;
    }

    fn finish(self) -> Vec<Unfilled> {
        self.entries
            .into_iter()
            .map(|((pair, reason), (hours, minutes))| Unfilled {
                source: self.source.clone(),
                pair,
                reason,
                hours,
                minutes,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_796_000_400;

    fn candle(minute: i64, volume: Option<f64>) -> MinuteCandle {
        MinuteCandle {
            tick: Tick::from_unix(T0 + minute * MINUTE),
            close: 100.0 + minute as f64,
            volume,
        }
    }

    /// Candles for minutes `0..n` of volume 1 each, but where `hole` says.
    fn day(n: i64, hole: Option<(i64, Option<f64>)>) -> PairCandles {
        let candles: Vec<MinuteCandle> = (0..n)
            .filter_map(|m| match hole {
                Some((h, volume)) if h == m => volume.map(|_| candle(m, None)),
                _ => Some(candle(m, Some(1.0))),
            })
            .collect();
        PairCandles::new(
            Tick::from_unix(T0),
            Tick::from_unix(T0 + n * MINUTE),
            &candles,
        )
    }

    #[test]
    fn volume_24h_needs_all_1440_trailing_minutes() {
        let at = |m: i64| Tick::from_unix(T0 + m * MINUTE);
        let full = day(1500, None);
        assert_eq!(full.volume_24h(at(1438)), None, "1,439 minutes fetched");
        assert_eq!(full.volume_24h(at(1439)), Some(1440.0));
        assert_eq!(full.volume_24h(at(1499)), Some(1440.0));
        assert_eq!(full.at(at(5)).unwrap().close, 105.0);
        let gap = day(1500, Some((100, None)));
        assert_eq!(gap.volume_24h(at(1539 - 1)), None, "out of the range");
        assert_eq!(
            gap.volume_24h(at(1539 - 100)),
            None,
            "minute 100 has no candle"
        );
        assert_eq!(
            gap.volume_24h(at(1499)),
            None,
            "minute 100 is in its trailing day"
        );
        let no_volume = day(1500, Some((1000, Some(0.0))));
        assert!(no_volume.at(at(1000)).is_some());
        assert_eq!(
            no_volume.volume_24h(at(1499)),
            None,
            "a candle without a volume"
        );
    }

    #[test]
    fn gaps_read_as_ranges() {
        let t = |m: i64| Tick::from_unix(T0 + 13 * 3600 + m * MINUTE);
        let gaps = [t(5), t(6), t(7), t(8), t(9), t(30)];
        assert_eq!(ranges(&gaps), "14:05-14:09, 14:30");
    }
}
