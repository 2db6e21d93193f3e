//! The sources of `cryptomon serve --demo`: the synthetic market of `cryptomon-mock`, quoted by
//! three sources so the dashboard has cross-source spreads to show.
//!
//! A synthetic source's quotes are a pure function of the tick, so 24 h of history can be
//! written at start-up and a restarted demo continues the same market.

use cryptomon_core::DynSource;

/// `demo` and `demo_b`, `demo_c`: [`cryptomon_mock::SyntheticSource::demo_market`], the same
/// sources `cryptomon collect --demo` collects.
pub fn demo_sources() -> Vec<DynSource> {
    cryptomon_mock::demo_sources()
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
