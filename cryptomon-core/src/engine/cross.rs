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

/// Fills `price_rank`, `volume_rank` and `volatility_rank` of every series.
pub(crate) fn add_ranks(series: &mut [SeriesSummary]) {
    let ranks = |measure: fn(&SeriesSummary) -> Option<f64>| {
        rank_shares(&series.iter().map(measure).collect::<Vec<_>>())
    };
    let price = ranks(|s| s.price_std);
    let volume = ranks(|s| s.volume_std);
    let volatility = ranks(|s| s.volatility_pct);
    for (i, s) in series.iter_mut().enumerate() {
        s.price_rank = price[i];
        s.volume_rank = volume[i];
        s.volatility_rank = volatility[i];
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

    fn series(
        pair: &str,
        price: f64,
        price_std: f64,
        volatility_pct: Option<f64>,
    ) -> SeriesSummary {
        SeriesSummary {
            source: crate::model::SourceName::new("kraken").unwrap(),
            pair: Pair::new(pair).unwrap(),
            samples: 1440,
            first: price,
            last: price,
            last_tick: Tick::from_unix(1_796_040_000),
            change_pct: 0.0,
            high: price,
            low: price,
            mean: price,
            volatility_pct,
            max_drawdown_pct: 0.0,
            rsi_14: None,
            sma_60: None,
            ema_60: price,
            gaps: 0,
            price_std: Some(price_std),
            volume_last: None,
            volume_std: None,
            price_rank: None,
            volume_rank: None,
            volatility_rank: None,
        }
    }

    /// A cheap, volatile token ranks above an expensive, calm one on volatility, though its
    /// absolute price std is far smaller (issue 23); ties share the higher rank, a `null`
    /// volatility has no rank and is not counted.
    #[test]
    fn volatility_rank_compares_markets_not_prices() {
        let mut all = [
            series("BTC-USD", 90_000.0, 900.0, Some(40.0)),
            series("DOGE-USD", 0.1, 0.01, Some(150.0)),
            series("ETH-USD", 3_000.0, 30.0, Some(40.0)),
            series("NEW-USD", 5.0, 0.5, None),
            series("SOL-USD", 140.0, 2.0, Some(80.0)),
        ];
        add_ranks(&mut all);
        let rank = |pair: &str| {
            let s = all.iter().find(|s| s.pair.as_str() == pair).unwrap();
            (s.price_rank, s.volatility_rank)
        };
        // The price-std rank follows the price: BTC first, DOGE last.
        assert_eq!(rank("BTC-USD").0, Some(1.0));
        assert_eq!(rank("DOGE-USD").0, Some(1.0 / 5.0));
        // Four series have a volatility: DOGE is the most volatile, BTC and ETH tie.
        assert_eq!(rank("DOGE-USD").1, Some(1.0));
        assert_eq!(rank("SOL-USD").1, Some(3.0 / 4.0));
        assert_eq!(rank("BTC-USD").1, Some(2.0 / 4.0));
        assert_eq!(rank("ETH-USD").1, Some(2.0 / 4.0));
        assert_eq!(rank("NEW-USD"), (Some(2.0 / 5.0), None));
    }

    #[test]
    fn all_null_ranks_are_null() {
        assert_eq!(rank_shares(&[None, None]), vec![None, None]);
        assert!(rank_shares(&[]).is_empty());
    }
}
