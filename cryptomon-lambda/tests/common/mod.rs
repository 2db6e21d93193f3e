//! What the handler tests share: the recorded Lambda events, an invocation, one-pair markets
//! that answer, fail or hang, and a store seeded with two of them.

// Each test binary compiles this module and uses its own share of it.
#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use cryptomon_core::{DynSource, Pair, SourceName, Tick};
use cryptomon_mock::{FaultySource, MemoryStore, SourceFault, SyntheticSource};
use lambda_runtime::{Context, LambdaEvent};
use serde_json::Value;

/// The recorded event `tests/events/{name}`.
pub(crate) fn event(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/events")
        .join(name);
    serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
}

/// An invocation with `payload` and no deadline.
pub(crate) fn invoke(payload: Value) -> LambdaEvent<Value> {
    LambdaEvent::new(payload, Context::default())
}

/// A synthetic market named `name` quoting BTC-USD (price and volume) at every tick.
fn btc_market(name: &str) -> SyntheticSource {
    let name = SourceName::new(name).unwrap();
    SyntheticSource::with_pairs(name, [Pair::new("BTC-USD").unwrap()], 7).with_null_probability(0.0)
}

/// A source named `name` quoting BTC-USD at every tick.
pub(crate) fn market(name: &str) -> DynSource {
    Arc::new(btc_market(name))
}

/// A source named `name` whose every fetch fails, `retryable` or not.
pub(crate) fn failing(name: &str, retryable: bool) -> DynSource {
    Arc::new(FaultySource::new(btc_market(name)).always(SourceFault::Fail { retryable }))
}

/// A source named `name` that answers only after a day: past any invocation's deadline.
pub(crate) fn hanging(name: &str) -> DynSource {
    let day = Duration::from_secs(86_400);
    Arc::new(FaultySource::new(btc_market(name)).always(SourceFault::Delay(day)))
}

/// The last tick of [`seeded_store`].
pub(crate) const SEEDED_UNTIL: &str = "2026-11-27T23:48:00Z";

/// A store with 49 minutes of two markets, `alpha` and `beta`, up to [`SEEDED_UNTIL`].
pub(crate) async fn seeded_store() -> Arc<MemoryStore> {
    let store = Arc::new(MemoryStore::new());
    let last = Tick::parse(SEEDED_UNTIL).unwrap();
    for name in ["alpha", "beta"] {
        cryptomon_mock::backfill(&btc_market(name), store.as_ref(), last, 49)
            .await
            .unwrap();
    }
    store
}
