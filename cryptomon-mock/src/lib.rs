//! Deterministic fakes for cryptomon.
//!
//! # Layout
//!
//! - [`memory_store`]: [`MemoryStore`], a `Store` in a map.
//!
//! # Example
//!
//! ```
//! use cryptomon_core::StoreExt;
//! use cryptomon_mock::MemoryStore;
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let store = MemoryStore::new();
//! assert!(store.put_if_absent("raw/a.json", "{}".into()).await.unwrap());
//! assert!(!store.put_if_absent("raw/a.json", "{}".into()).await.unwrap());
//! # });
//! ```

pub mod memory_store;

pub use memory_store::MemoryStore;
