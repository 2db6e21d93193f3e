//! mockall mocks of [`Source`] and [`Store`], for interaction checks: called once, never called,
//! fails on the third call.
//!
//! Prefer the plain fakes ([`crate::MemoryStore`], [`crate::SyntheticSource`]) to check *what*
//! a pipeline computes; use these to check *which calls* it makes.
//!
//! ```
//! use cryptomon_core::{Error, SourceName, Tick, collect};
//! use cryptomon_mock::{MockSource, MockStore};
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let name = SourceName::new("kraken").unwrap();
//! let mut source = MockSource::new();
//! source.expect_name().return_const(name);
//! source.expect_fetch().times(1).returning(|_| {
//!     Err(Error::Source { source_name: "kraken".into(), message: "down".into(), retryable: true })
//! });
//! let mut store = MockStore::new();
//! store.expect_put_opts().never();
//! let tick = Tick::parse("2026-11-27T12:00:00Z").unwrap();
//! assert!(collect(&source, &store, tick).await.is_err());
//! # });
//! ```

// mockall's generated items carry no docs of their own.
#![allow(missing_docs)]

use std::fmt;
use std::ops::{Deref, DerefMut};

use async_trait::async_trait;
use bytes::Bytes;
use cryptomon_core::{Fetch, Fetched, PutMode, Result, SourceName, Store, Tick, Version};
use mockall::mock;

mock! {
    /// A mock [`cryptomon_core::Source`].
    pub Source {}

    #[async_trait]
    impl cryptomon_core::Source for Source {
        fn name(&self) -> &SourceName;
        async fn fetch(&self, tick: Tick) -> Result<Fetched>;
    }
}

mock! {
    /// The expectations behind a [`MockStore`], reached through it (`store.expect_put_opts()`).
    ///
    /// The methods mirror [`cryptomon_core::Store`]'s, except that `get_opts` takes its version by
    /// value: mockall cannot mock an argument with a reference nested in another type
    /// (`Option<&Version>`, asomers/mockall#61), so [`MockStore`] implements the trait by hand and
    /// forwards here.
    pub StoreCalls {
        /// [`cryptomon_core::Store::get_opts`], with the version cloned.
        pub fn get_opts(&self, key: &str, if_none_match: Option<Version>) -> Result<Fetch>;
        /// [`cryptomon_core::Store::put_opts`].
        pub fn put_opts(&self, key: &str, body: Bytes, mode: PutMode) -> Result<Version>;
        /// [`cryptomon_core::Store::list`].
        pub fn list(&self, prefix: &str) -> Result<Vec<String>>;
        /// [`cryptomon_core::Store::list_prefixes`].
        pub fn list_prefixes(&self, prefix: &str) -> Result<Vec<String>>;
    }
}

/// A mock [`cryptomon_core::Store`]: set expectations with `expect_get_opts`,
/// `expect_put_opts`, `expect_list` and `expect_list_prefixes` (of [`MockStoreCalls`], reached
/// through `Deref`). Every method is mocked, `list_prefixes` included, so a test sees every call.
#[derive(Default)]
pub struct MockStore {
    calls: MockStoreCalls,
}

impl MockStore {
    /// A mock with no expectation: any call panics until one is set.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Deref for MockStore {
    type Target = MockStoreCalls;
    fn deref(&self) -> &MockStoreCalls {
        &self.calls
    }
}

impl DerefMut for MockStore {
    fn deref_mut(&mut self) -> &mut MockStoreCalls {
        &mut self.calls
    }
}

#[async_trait]
impl Store for MockStore {
    async fn get_opts(&self, key: &str, if_none_match: Option<&Version>) -> Result<Fetch> {
        self.calls.get_opts(key, if_none_match.cloned())
    }

    async fn put_opts(&self, key: &str, body: Bytes, mode: PutMode) -> Result<Version> {
        self.calls.put_opts(key, body, mode)
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        self.calls.list(prefix)
    }

    async fn list_prefixes(&self, prefix: &str) -> Result<Vec<String>> {
        self.calls.list_prefixes(prefix)
    }
}

// mockall does not derive `Debug`, which both traits require.
impl fmt::Debug for MockSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MockSource")
    }
}

impl fmt::Debug for MockStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MockStore")
    }
}

impl fmt::Display for MockStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("mock store")
    }
}

#[cfg(test)]
mod tests {
    use cryptomon_core::{Error, StoreExt, collect};
    use mockall::Sequence;
    use mockall::predicate::{always, eq, function};

    use super::*;
    use crate::SyntheticSource;

    fn tick() -> Tick {
        Tick::parse("2026-11-27T12:00:00Z").unwrap()
    }

    #[tokio::test]
    async fn collect_creates_the_snapshot_exactly_once() {
        let source = SyntheticSource::demo();
        let key = "raw/source=demo/date=2026-11-27/20261127T120000Z.json";
        let mut store = MockStore::new();
        store
            .expect_put_opts()
            .with(
                eq(key),
                function(|body: &Bytes| body.starts_with(b"{\"schema\"")),
                eq(PutMode::Create),
            )
            .times(1)
            .returning(|_, _, _| Ok(Version("v1".into())));
        store.expect_get_opts().never();
        store.expect_list().never();
        let report = collect(&source, &store, tick()).await.unwrap();
        assert!(report.written);
        assert_eq!(report.key, key);
    }

    #[tokio::test]
    async fn collect_of_a_stored_tick_reports_nothing_written() {
        let mut store = MockStore::new();
        store
            .expect_put_opts()
            .times(1)
            .returning(|key, _, _| Err(Error::AlreadyExists { key: key.into() }));
        let report = collect(&SyntheticSource::demo(), &store, tick())
            .await
            .unwrap();
        assert!(!report.written);
    }

    #[tokio::test]
    async fn a_failing_fetch_never_writes() {
        let mut source = MockSource::new();
        source
            .expect_name()
            .return_const(SourceName::new("kraken").unwrap());
        source
            .expect_fetch()
            .with(eq(tick()))
            .times(1)
            .returning(|_| {
                Err(Error::Source {
                    source_name: "kraken".into(),
                    message: "HTTP 503".into(),
                    retryable: true,
                })
            });
        let mut store = MockStore::new();
        store.expect_put_opts().never();
        let err = collect(&source, &store, tick()).await.unwrap_err();
        assert!(
            err.is_retryable() && err.to_string().contains("503"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_store_failing_on_the_third_call() {
        let mut store = MockStore::new();
        let mut seq = Sequence::new();
        store
            .expect_put_opts()
            .times(2)
            .in_sequence(&mut seq)
            .returning(|_, _, _| Ok(Version("v".into())));
        store
            .expect_put_opts()
            .with(eq("c"), always(), eq(PutMode::Overwrite))
            .times(1)
            .in_sequence(&mut seq)
            .returning(|key, _, _| {
                Err(Error::Store {
                    op: "put",
                    key: key.into(),
                    retryable: false,
                    source: "disk full".into(),
                })
            });
        store.put("a", Bytes::new()).await.unwrap();
        store.put("b", Bytes::new()).await.unwrap();
        let err = store.put("c", Bytes::new()).await.unwrap_err();
        assert!(err.to_string().contains("disk full"), "{err}");
    }

    #[tokio::test]
    async fn get_opts_sees_the_version() {
        let mut store = MockStore::new();
        store
            .expect_get_opts()
            .withf(|key, v| key == "k" && v.as_ref().is_some_and(|v| v.0 == "7"))
            .returning(|_, _| Ok(Fetch::NotModified));
        let got = store
            .get_opts("k", Some(&Version("7".into())))
            .await
            .unwrap();
        assert!(matches!(got, Fetch::NotModified));
    }
}
