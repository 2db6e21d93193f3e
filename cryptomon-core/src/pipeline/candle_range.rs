//! Candles over any time range: the window's samples and the history's merged, the window's
//! winning where both hold a minute of the series, within a cap on the candles of one answer.

use std::sync::Arc;

use super::history_read::{HistoryCache, stored_days};
use crate::engine::{self, Window};
use crate::error::{Error, Result};
use crate::model::{
    CANDLES_SCHEMA, CandleInterval, Candles, Measure, Pair, Point, SourceName, Tick,
};
use crate::store::Store;

/// The most candles one range answer may hold: a range that could hold more (from its first
/// stored sample to its end) is refused, with a coarser interval suggested.
pub const MAX_CANDLES: i64 = 5_000;

/// The candles of `source:pair` with ticks in `[from, to]` (which the caller has checked is
/// ordered), from `window` and the stored history days the range touches.
///
/// Fails with [`Error::TooManyCandles`] past [`MAX_CANDLES`] and with [`Error::UnknownSeries`]
/// when neither the window nor any history day read holds the series. A history day that
/// cannot be read is left out and listed in the answer's `skipped_days`.
#[allow(clippy::too_many_arguments)]
pub async fn range_candles(
    store: &dyn Store,
    cache: &HistoryCache,
    window: Option<Arc<Window>>,
    source: &SourceName,
    pair: &Pair,
    interval: CandleInterval,
    from: Tick,
    to: Tick,
) -> Result<Candles> {
    let recent = match window.filter(|w| w.sid(source, pair).is_some()) {
        Some(window) => {
            let (s, p) = (source.clone(), pair.clone());
            let points =
                super::blocking(move || engine::points(&window, &s, &p, Measure::Price)).await?;
            Some(
                points
                    .into_iter()
                    .filter(|p| (from..=to).contains(&p.t))
                    .collect::<Vec<_>>(),
            )
        }
        None => None,
    };
    let dates = stored_days(store, from, to).await?;
    // The cap counts from the first stored sample, so "everything since 1970" is a valid range.
    let first_day = dates
        .first()
        .and_then(|d| Tick::parse(&format!("{d}T00:00:00Z")).ok());
    let first_recent = recent.as_ref().and_then(|r| r.first()).map(|p| p.t);
    let first = [first_day, first_recent]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(to);
    let secs = interval.secs();
    let candles = to.unix().div_euclid(secs) - from.max(first).unix().div_euclid(secs) + 1;
    if candles > MAX_CANDLES {
        return Err(Error::TooManyCandles {
            candles,
            interval,
            max: MAX_CANDLES,
        });
    }
    let history = cache.read_days(store, source, pair, dates, from, to).await;
    if recent.is_none() && !history.found {
        return Err(Error::UnknownSeries {
            source_name: source.to_string(),
            pair: pair.to_string(),
        });
    }
    let merged = merge(history.points, recent.unwrap_or_default());
    Ok(Candles {
        schema: CANDLES_SCHEMA.to_owned(),
        source: source.clone(),
        pair: pair.clone(),
        interval,
        candles: engine::bucket(merged.iter().map(|p| (p.t.unix(), p.v)), interval),
        skipped_days: history.skipped,
    })
}

/// The history's points and the window's, in tick order; where both hold a minute, the
/// window's.
fn merge(mut history: Vec<Point>, recent: Vec<Point>) -> Vec<Point> {
    let minute = |p: &Point| p.t.unix().div_euclid(60);
    // Each day is sorted, and days are read in order; a stable sort keeps it cheap and safe.
    history.sort_by_key(|p| p.t);
    let mut out = Vec::with_capacity(history.len() + recent.len());
    let mut recent = recent.into_iter().peekable();
    for h in history {
        while let Some(r) = recent.next_if(|r| minute(r) < minute(&h)) {
            out.push(r);
        }
        if recent.peek().is_some_and(|r| minute(r) == minute(&h)) {
            continue;
        }
        out.push(h);
    }
    out.extend(recent);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn points(spec: &[(i64, f64)]) -> Vec<Point> {
        spec.iter()
            .map(|&(t, v)| Point {
                t: Tick::from_unix(t),
                v,
            })
            .collect()
    }

    #[test]
    fn the_window_wins_a_minute_both_hold() {
        let history = points(&[(0, 1.0), (60, 2.0), (120, 3.0)]);
        let recent = points(&[(60, 20.0), (180, 40.0)]);
        assert_eq!(
            merge(history, recent),
            points(&[(0, 1.0), (60, 20.0), (120, 3.0), (180, 40.0)])
        );
    }

    #[test]
    fn either_side_alone_is_kept_whole() {
        let only = points(&[(0, 1.0), (60, 2.0)]);
        assert_eq!(merge(only.clone(), Vec::new()), only);
        assert_eq!(merge(Vec::new(), only.clone()), only);
    }
}
