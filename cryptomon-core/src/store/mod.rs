//! The [`Store`] trait: a flat key space of immutable-looking objects (an S3 bucket, a
//! directory, a map), and the conveniences every backend gets through [`StoreExt`].

use std::fmt::{Debug, Display};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;

use crate::error::{Error, Result};

#[cfg(feature = "fs")]
mod fs;
#[cfg(feature = "fs")]
pub use fs::FsStore;
#[cfg(feature = "s3")]
pub mod s3;
#[cfg(feature = "s3")]
pub use s3::{S3Location, S3Store};

/// An opaque version of a stored object (an ETag on S3, inode and mtime on files, a counter in
/// memory). Two reads that return the same version returned the same bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Version(pub String);

/// An object read from a store.
#[derive(Debug, Clone)]
pub struct Object {
    /// The bytes.
    pub body: Bytes,
    /// The version they belong to.
    pub version: Version,
}

/// The answer to [`Store::get_opts`].
#[derive(Debug, Clone)]
pub enum Fetch {
    /// No object under the key.
    Missing,
    /// The object still has the version the caller already holds.
    NotModified,
    /// The object.
    Found(Object),
}

impl Fetch {
    /// The answer to a read of `key` without a version to compare: the object, `None` if
    /// missing. A backend cannot answer "not modified" to it, so that answer is an error.
    pub fn unconditional(self, key: &str) -> Result<Option<Object>> {
        match self {
            Fetch::Found(o) => Ok(Some(o)),
            Fetch::Missing => Ok(None),
            Fetch::NotModified => Err(Error::store(
                "get",
                key,
                false,
                crate::error::Message("backend answered 'not modified' to a plain get".into()),
            )),
        }
    }
}

/// How a put treats an object already under the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PutMode {
    /// Replace it.
    Overwrite,
    /// Fail with [`Error::AlreadyExists`] if there is one (S3 `If-None-Match: *`).
    Create,
    /// Replace it only if it still has this version, else fail with [`Error::Precondition`]
    /// (S3 `If-Match`).
    Update(Version),
}

/// A key-value object store.
///
/// Backends implement three methods; [`StoreExt`] builds the rest on them.
///
/// # Contract
///
/// - Keys follow [`crate::keys::validate_key`]; a backend refuses any other key with
///   [`Error::InvalidKey`] before touching storage.
/// - A put is atomic: a reader sees the whole old object or the whole new one, never a mix and
///   never a partial body, even if the writer dies half-way.
/// - [`PutMode::Create`] and [`PutMode::Update`] are atomic compare-and-swaps against every other
///   writer of the same store, including other processes.
/// - [`Store::list`] returns every key under the prefix, sorted, however many there are
///   (pagination is the backend's business), and no key of the backend's own bookkeeping.
/// - Failures name the operation and key, and say whether retrying may help
///   ([`Error::is_retryable`]).
#[async_trait]
pub trait Store: Send + Sync + Debug + Display + 'static {
    /// Reads `key`; with `if_none_match`, answers [`Fetch::NotModified`] when the object still
    /// has that version (without transferring it, where the backend can).
    async fn get_opts(&self, key: &str, if_none_match: Option<&Version>) -> Result<Fetch>;

    /// Writes `body` under `key` according to `mode` and returns the new version.
    async fn put_opts(&self, key: &str, body: Bytes, mode: PutMode) -> Result<Version>;

    /// Every key that starts with `prefix`, sorted.
    async fn list(&self, prefix: &str) -> Result<Vec<String>>;

    /// The keys under `prefix` that sort after `start_after`, sorted: what S3 calls
    /// `StartAfter`, so a reader that has seen a partition up to a key lists only what follows
    /// it (one request for the new keys, not a page per 1,000 old ones).
    ///
    /// The provided method filters [`Store::list`], which is correct for every backend;
    /// backends override it where the listing itself can start there.
    async fn list_after(&self, prefix: &str, start_after: &str) -> Result<Vec<String>> {
        let mut keys = self.list(prefix).await?;
        keys.retain(|k| k.as_str() > start_after);
        Ok(keys)
    }

    /// The distinct "directories" directly under `prefix` (which ends in `/` or is empty):
    /// each is `prefix` + one segment + `/`, sorted. What S3 calls common prefixes with the
    /// delimiter `/`; the incremental transform uses it to find sources and date partitions
    /// without listing every snapshot.
    ///
    /// The provided method derives them from [`Store::list`], which is correct for every
    /// backend; backends override it where they can answer without a full listing.
    async fn list_prefixes(&self, prefix: &str) -> Result<Vec<String>> {
        let mut out: Vec<String> = Vec::new();
        for key in self.list(prefix).await? {
            if let Some((dir, _)) = key[prefix.len()..].split_once('/') {
                let p = format!("{prefix}{dir}/");
                if out.last() != Some(&p) {
                    out.push(p);
                }
            }
        }
        Ok(out)
    }
}

/// A shared, type-erased store.
pub type DynStore = Arc<dyn Store>;

/// Conveniences over [`Store`], for every store.
#[async_trait]
pub trait StoreExt: Store {
    /// Reads `key`, `None` if there is no such object.
    async fn get(&self, key: &str) -> Result<Option<Object>> {
        self.get_opts(key, None).await?.unconditional(key)
    }

    /// Writes `body` under `key`, replacing what is there.
    async fn put(&self, key: &str, body: Bytes) -> Result<Version> {
        self.put_opts(key, body, PutMode::Overwrite).await
    }

    /// Writes `body` under `key` unless an object is already there. `true` when written.
    async fn put_if_absent(&self, key: &str, body: Bytes) -> Result<bool> {
        match self.put_opts(key, body, PutMode::Create).await {
            Ok(_) => Ok(true),
            Err(Error::AlreadyExists { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

impl<T: Store + ?Sized> StoreExt for T {}
