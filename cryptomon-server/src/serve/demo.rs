//! The sources of `cryptomon serve --demo`: the synthetic market of `cryptomon-mock`, quoted by
//! three sources so the dashboard has cross-source spreads to show.
//!
//! A synthetic source's quotes are a pure function of the tick, so 24 h of history can be
//! written at start-up and a restarted demo continues the same market.

use std::sync::Arc;

use cryptomon_core::{DynSource, SourceName};
use cryptomon_mock::SyntheticSource;
use cryptomon_mock::synthetic_source::DEFAULT_SPIKE_FACTOR;

/// `demo` (the mock's [`SyntheticSource::demo`]) and `demo_b`, `demo_c`: the same twelve pairs
/// of the same market (same seed), each with its own basis and noise, and volume spikes frequent
/// enough that a day of history shows alerts.
pub fn demo_sources() -> Vec<DynSource> {
    let mut sources: Vec<DynSource> = vec![Arc::new(SyntheticSource::demo())];
    for name in ["demo_b", "demo_c"] {
        if let Ok(name) = SourceName::new(name) {
            sources.push(Arc::new(
                SyntheticSource::new(name, 12, 42).with_volume_spikes(0.01, DEFAULT_SPIKE_FACTOR),
            ));
        }
    }
    sources
}

#[cfg(test)]
mod tests {
    use super::*;
    use cryptomon_core::Tick;

    #[tokio::test]
    async fn the_demo_sources_quote_one_market() {
        let sources = demo_sources();
        let names: Vec<&str> = sources.iter().map(|s| s.name().as_str()).collect();
        assert_eq!(names, ["demo", "demo_b", "demo_c"]);
        let tick = Tick::parse("2026-11-27T12:00:00Z").unwrap();
        let a = sources[0].fetch(tick).await.unwrap();
        let b = sources[1].fetch(tick).await.unwrap();
        assert_eq!(a.quotes.len(), 12);
        for (qa, qb) in a.quotes.iter().zip(&b.quotes) {
            assert_eq!(qa.pair, qb.pair);
            // One market: the sources agree within 1 %, but not exactly.
            assert!((qa.price / qb.price - 1.0).abs() < 1e-2, "{qa:?} {qb:?}");
        }
    }
}
