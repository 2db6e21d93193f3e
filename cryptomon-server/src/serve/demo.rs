//! The sources of `cryptomon serve --demo`: a deterministic synthetic market, quoted by three
//! sources so the dashboard has spreads to show.
//!
//! Prices are a pure function of (source, pair, tick), so 24 h of history can be written at
//! start-up and a restarted demo continues the same market.

use std::f64::consts::TAU;
use std::sync::Arc;

use async_trait::async_trait;
use cryptomon_core::{DynSource, Fetched, Pair, Quote, Result, Source, SourceName, Tick};

/// The demo's pairs and their price levels.
const PAIRS: [(&str, f64); 12] = [
    ("BTC-USD", 91_000.0),
    ("ETH-USD", 3_050.0),
    ("SOL-USD", 142.0),
    ("XRP-USD", 2.2),
    ("ADA-USD", 0.42),
    ("DOGE-USD", 0.16),
    ("AVAX-USD", 14.5),
    ("DOT-USD", 2.4),
    ("LINK-USD", 13.2),
    ("LTC-USD", 84.0),
    ("ATOM-USD", 2.6),
    ("XLM-USD", 0.25),
];

/// The demo's sources: `demo_a`, `demo_b` and `demo_c`, each quoting the same twelve pairs with
/// its own small basis and noise.
pub fn demo_sources() -> Vec<DynSource> {
    ["demo_a", "demo_b", "demo_c"]
        .into_iter()
        .enumerate()
        .filter_map(|(i, name)| {
            let name = SourceName::new(name).ok()?;
            Some(Arc::new(DemoSource {
                name,
                seed: i as u64 + 1,
            }) as DynSource)
        })
        .collect()
}

/// One synthetic exchange.
#[derive(Debug)]
struct DemoSource {
    name: SourceName,
    seed: u64,
}

/// A uniform number in [-1, 1) from a few integers (SplitMix64).
fn noise(a: u64, b: u64, c: i64) -> f64 {
    let mut z = a
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(b.wrapping_mul(0xBF58_476D_1CE4_E5B9))
        .wrapping_add(c as u64);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 52) as f64 - 1.0
}

impl DemoSource {
    fn quote(&self, index: usize, pair: &str, level: f64, tick: Tick) -> Option<Quote> {
        let t = tick.unix() as f64;
        let i = index as f64;
        // The market: slow waves shared by every source, so sources agree up to a few bp.
        let day = (t / 86_400.0 * TAU * (1.0 + i / 7.0) + i).sin();
        let hour = (t / 3_600.0 * TAU / (1.0 + i / 5.0) + 2.0 * i).sin();
        let wiggle = (t / 600.0 * TAU + 3.0 * i).sin();
        let amplitude = 0.01 + 0.004 * (i % 5.0);
        let market = level * (1.0 + amplitude * (2.0 * day + hour + 0.3 * wiggle));
        // Each source: a fixed basis and its own tick noise.
        let basis = 4e-4 * noise(self.seed, index as u64, -1);
        let jitter = 1.5e-4 * noise(self.seed, index as u64, tick.unix());
        let price = market * (1.0 + basis + jitter);
        // Volume: a daily cycle, and a rare spike (about one per pair and source a day).
        let spike = noise(self.seed ^ 0xA5A5, index as u64, tick.unix() / 60) > 0.9986;
        let volume = 1e7 / level.sqrt()
            * (1.0 + 0.25 * (t / 86_400.0 * TAU + i).sin())
            * (1.0 + 0.02 * noise(self.seed, index as u64 + 100, tick.unix()))
            * if spike { 4.5 } else { 1.0 };
        let mut q = Quote::new(Pair::new(pair).ok()?, price);
        let half_spread = price * 1e-4;
        q.bid = Some(price - half_spread);
        q.ask = Some(price + half_spread);
        q.volume_24h = Some(volume);
        q.quote_volume_24h = Some(volume * price);
        q.exchange_time = Some(tick.to_datetime());
        Some(q)
    }
}

#[async_trait]
impl Source for DemoSource {
    fn name(&self) -> &SourceName {
        &self.name
    }

    async fn fetch(&self, tick: Tick) -> Result<Fetched> {
        let quotes = PAIRS
            .iter()
            .enumerate()
            .filter_map(|(i, &(pair, level))| self.quote(i, pair, level, tick))
            .collect();
        Ok(Fetched {
            quotes,
            raw: serde_json::json!({"synthetic": true}),
            // The tick itself: history written at start-up looks as if collected on time.
            fetched_at: tick.to_datetime(),
            problems: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_demo_market_is_deterministic_and_valid() {
        let sources = demo_sources();
        assert_eq!(sources.len(), 3);
        let tick = Tick::parse("2026-11-27T12:00:00Z").unwrap();
        let a = sources[0].fetch(tick).await.unwrap();
        assert_eq!(a, sources[0].fetch(tick).await.unwrap());
        assert_eq!(a.quotes.len(), PAIRS.len());
        let b = sources[1].fetch(tick).await.unwrap();
        for (qa, qb) in a.quotes.iter().zip(&b.quotes) {
            qa.check().unwrap();
            // Sources agree within 0.5 %: spreads of a few basis points.
            assert!((qa.price / qb.price - 1.0).abs() < 5e-3, "{qa:?} {qb:?}");
            assert_ne!(qa.price, qb.price);
        }
    }
}
