//! Metrics across series: ranks and cross-source spreads.

use crate::model::{Pair, SeriesSummary, Spread, Tick};

/// The share of values that are ≤ each value, `None` where the value is `None`.
///
/// Ties share the highest rank: std 100, 200, 200 rank 1/3, 3/3, 3/3.
pub(crate) fn rank_shares(values: &[Option<f64>]) -> Vec<Option<f64>> {
    let mut sorted: Vec<f64> = values.iter().flatten().copied().collect();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len() as f64;
    values
        .iter()
        .map(|v| v.map(|x| sorted.partition_point(|&y| y <= x) as f64 / n))
        .collect()
}

/// Fills `price_rank` and `volume_rank` of every series.
pub(crate) fn add_ranks(series: &mut [SeriesSummary]) {
    let price: Vec<_> = series.iter().map(|s| s.price_std).collect();
    let volume: Vec<_> = series.iter().map(|s| s.volume_std).collect();
    for (s, (p, v)) in series
        .iter_mut()
        .zip(rank_shares(&price).into_iter().zip(rank_shares(&volume)))
    {
        s.price_rank = p;
        s.volume_rank = v;
    }
}

/// Spreads of every pair quoted by at least two sources at `as_of`. `series` must be in
/// (pair, source) order; ties go to the first source in name order.
pub(crate) fn spreads(series: &[SeriesSummary], as_of: Tick) -> Vec<Spread> {
    let mut out = Vec::new();
    let at_as_of: Vec<&SeriesSummary> = series.iter().filter(|s| s.last_tick == as_of).collect();
    for group in at_as_of.chunk_by(|a, b| a.pair == b.pair) {
        if group.len() < 2 {
            continue;
        }
        let (mut lo, mut hi) = (group[0], group[0]);
        for s in &group[1..] {
            if s.last < lo.last {
                lo = s;
            }
            if s.last > hi.last {
                hi = s;
            }
        }
        out.push(Spread {
            pair: Pair::clone(&lo.pair),
            sources: group.len() as u32,
            min: lo.last,
            max: hi.last,
            min_source: lo.source.clone(),
            max_source: hi.source.clone(),
            spread_bps: (hi.last - lo.last) / lo.last * 10_000.0,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_follow_the_contract_example() {
        let r = rank_shares(&[Some(100.0), Some(200.0), Some(300.0)]);
        assert_eq!(r, vec![Some(1.0 / 3.0), Some(2.0 / 3.0), Some(1.0)]);
    }

    #[test]
    fn ties_share_the_higher_rank_and_nulls_stay_null() {
        let r = rank_shares(&[Some(200.0), None, Some(100.0), Some(200.0)]);
        assert_eq!(r, vec![Some(1.0), None, Some(1.0 / 3.0), Some(1.0)]);
    }

    #[test]
    fn all_null_ranks_are_null() {
        assert_eq!(rank_shares(&[None, None]), vec![None, None]);
        assert!(rank_shares(&[]).is_empty());
    }
}
