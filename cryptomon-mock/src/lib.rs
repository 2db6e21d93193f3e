//! Deterministic fakes for cryptomon: stores, sources, fault injection, mocks and the `Store`
//! conformance suite. Everything here is plain and reproducible: the same seed, calls and faults
//! give the same results on every run and every machine.
//!
//! # Layout
//!
//! - [`memory_store`]: [`MemoryStore`], a `Store` in a map, for tests and `--store memory`.
//! - [`synthetic_source`]: [`SyntheticSource`], a seeded market of any number of pairs whose
//!   quotes are a pure function of the tick, and [`synthetic_pairs`]; `SyntheticSource::demo()`
//!   is what `cryptomon --demo` collects.
//! - [`backfill`](mod@backfill): [`backfill()`], a stretch of history collected in one call.
//! - [`faulty`]: [`FaultyStore`] and [`FaultySource`], wrappers that fail chosen calls (the n-th
//!   call, a key prefix, a crash after k writes, a lost response; an error, garbage or a delay
//!   from a source) and count what goes through them.
//! - [`mocks`]: mockall's [`MockSource`] and [`MockStore`], for interaction checks.
//! - [`conformance`]: [`run_conformance`], the suite every `Store` backend must pass.
//!
//! # Example
//!
//! Backfill an hour of a synthetic market into a memory store, then check the store honours the
//! `Store` contract:
//!
//! ```
//! use cryptomon_core::{StoreExt, Tick};
//! use cryptomon_mock::{MemoryStore, SyntheticSource, backfill, run_conformance};
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let store = MemoryStore::new();
//! let source = SyntheticSource::demo();
//! let now = Tick::parse("2026-11-27T12:00:00Z").unwrap();
//! assert_eq!(backfill(&source, &store, now, 60).await.unwrap(), 60);
//! let last = store.get("raw/source=demo/date=2026-11-27/20261127T120000Z.json").await.unwrap();
//! assert!(last.is_some());
//!
//! run_conformance(&store).await;
//! # });
//! ```

pub mod backfill;
pub mod conformance;
pub mod faulty;
pub mod memory_store;
pub mod mocks;
pub mod synthetic_source;

pub use backfill::backfill;
pub use conformance::run_conformance;
pub use faulty::{Fault, FaultySource, FaultyStore, InjectedFault, Op, SourceFault, StoreCounters};
pub use memory_store::MemoryStore;
pub use mocks::{MockSource, MockStore};
pub use synthetic_source::{SyntheticSource, synthetic_pairs};

/// The sources of `cryptomon --demo` ([`SyntheticSource::demo_market`]), ready to collect.
pub fn demo_sources() -> Vec<cryptomon_core::DynSource> {
    SyntheticSource::demo_market()
        .into_iter()
        .map(|s| std::sync::Arc::new(s) as cryptomon_core::DynSource)
        .collect()
}

/// The README's embedding example, compiled and run as a doc test.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeExample;
