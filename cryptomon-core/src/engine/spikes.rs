//! Spikes, the summary's alerts at `as_of`: a value above `factor` × its mean over the window
//! before it.

use super::series::{Columns, mean};
use super::window::Window;
use crate::error::Result;
use crate::model::{Alert, Measure, Tick};

/// The contract's alert rule: value at `as_of` > `factor` × mean of the non-null values in
/// [`as_of` − `minutes`, `as_of`). Sorted by (pair, source, measure).
///
/// A mean of 0 (a volume that was 0 all hour) raises nothing: the ratio would be undefined.
/// Each series' samples are contiguous and in tick order, so the hour before `as_of` is found
/// by binary search and only it is read.
pub(crate) fn alerts(
    window: &Window,
    as_of: Tick,
    factor: f64,
    minutes: u32,
) -> Result<Vec<Alert>> {
    let from = as_of.unix() - i64::from(minutes) * 60;
    let columns = Columns::of(window)?;
    let offsets = window.offsets();
    let mut out = Vec::new();
    for (sid, key) in window.series().iter().enumerate() {
        let (start, end) = (offsets[sid], offsets[sid + 1]);
        let ticks = &columns.tick[start..end];
        // The sample at `as_of` is the series' last, if it has one.
        if ticks.last() != Some(&as_of.unix()) {
            continue;
        }
        let now = end - 1;
        let hour = start + ticks.partition_point(|&t| t < from)..now;
        if hour.is_empty() {
            continue;
        }
        for measure in Measure::ALL {
            let (value, mean) = match measure {
                Measure::Price => (
                    Some(columns.price[now]),
                    Some(mean(&columns.price[hour.clone()])),
                ),
                Measure::Volume => {
                    let volumes = columns.volumes(hour.clone());
                    (
                        columns.volume.get(now),
                        (!volumes.is_empty()).then(|| mean(&volumes)),
                    )
                }
            };
            if let (Some(value), Some(mean)) = (value, mean)
                && mean > 0.0
                && value > factor * mean
            {
                out.push(Alert {
                    source: key.source.clone(),
                    pair: key.pair.clone(),
                    measure,
                    value,
                    mean_1h: mean,
                    ratio: value / mean,
                });
            }
        }
    }
    Ok(out)
}
