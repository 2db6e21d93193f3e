//! Alerts at `as_of`: a value above `factor` × its mean over the window before it.

use polars::prelude::*;

use super::window::{Window, cols};
use crate::error::Result;
use crate::model::{Alert, Measure, Tick};

/// The contract's alert rule: value at `as_of` > `factor` × mean of the non-null values in
/// [`as_of` − `minutes`, `as_of`). Sorted by (pair, source, measure).
///
/// A mean of 0 (a volume that was 0 all hour) raises nothing: the ratio would be undefined.
pub(crate) fn alerts(
    window: &Window,
    as_of: Tick,
    factor: f64,
    minutes: u32,
) -> Result<Vec<Alert>> {
    let from = as_of.unix() - i64::from(minutes) * 60;
    let t = col(cols::TICK);
    let frame = window.frame().clone().lazy();
    let hour = frame
        .clone()
        .filter(
            t.clone()
                .gt_eq(lit(from))
                .and(t.clone().lt(lit(as_of.unix()))),
        )
        .group_by([col(cols::SID)])
        .agg([
            col(cols::PRICE).mean().alias("price_mean"),
            col(cols::VOLUME).mean().alias("volume_mean"),
        ]);
    let now = frame.filter(t.eq(lit(as_of.unix()))).select([
        col(cols::SID),
        col(cols::PRICE),
        col(cols::VOLUME),
    ]);
    let joined = now
        .join(
            hour,
            [col(cols::SID)],
            [col(cols::SID)],
            JoinArgs::new(JoinType::Inner),
        )
        .sort([cols::SID], SortMultipleOptions::default())
        .collect()?;
    let sid = joined.column(cols::SID)?.u32()?;
    let mut out = Vec::new();
    for i in 0..joined.height() {
        let Some(s) = sid.get(i) else { continue };
        for measure in Measure::ALL {
            let value = joined.column(measure.as_str())?.f64()?.get(i);
            let mean = joined
                .column(&format!("{}_mean", measure.as_str()))?
                .f64()?
                .get(i);
            if let (Some(value), Some(mean)) = (value, mean)
                && mean > 0.0
                && value > factor * mean
            {
                let key = &window.series()[s as usize];
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
