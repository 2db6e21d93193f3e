//! `MemoryStore`: a `Store` in a map, for tests and `--store memory`.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use bytes::Bytes;
use cryptomon_core::keys::{validate_key, validate_prefix};
use cryptomon_core::{Error, Fetch, Object, PutMode, Result, Store, Version};

/// An in-memory store. Versions are a global counter, so every write gets a new one.
#[derive(Debug, Default)]
pub struct MemoryStore {
    objects: Mutex<BTreeMap<String, Object>>,
    next_version: AtomicU64,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of objects held.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether the store is empty.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// Every key, sorted.
    pub fn keys(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    /// Stores `body` under `key` directly, bypassing key validation: lets tests plant the
    /// foreign and corrupt objects a real bucket can hold.
    pub fn insert_raw(&self, key: &str, body: impl Into<Bytes>) {
        let version = self.version();
        self.lock().insert(
            key.to_owned(),
            Object {
                body: body.into(),
                version,
            },
        );
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Object>> {
        // A poisoned map is still a consistent map: every write is a single insert.
        self.objects.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn version(&self) -> Version {
        Version(
            self.next_version
                .fetch_add(1, Ordering::Relaxed)
                .to_string(),
        )
    }
}

impl fmt::Display for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("memory store")
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn get_opts(&self, key: &str, if_none_match: Option<&Version>) -> Result<Fetch> {
        validate_key(key)?;
        Ok(match self.lock().get(key) {
            None => Fetch::Missing,
            Some(o) if Some(&o.version) == if_none_match => Fetch::NotModified,
            Some(o) => Fetch::Found(o.clone()),
        })
    }

    async fn put_opts(&self, key: &str, body: Bytes, mode: PutMode) -> Result<Version> {
        validate_key(key)?;
        let version = self.version();
        let mut objects = self.lock();
        match (&mode, objects.get(key)) {
            (PutMode::Create, Some(_)) => {
                return Err(Error::AlreadyExists { key: key.into() });
            }
            (PutMode::Update(expected), current)
                if current.map(|o| &o.version) != Some(expected) =>
            {
                return Err(Error::Precondition { key: key.into() });
            }
            _ => {}
        }
        objects.insert(
            key.to_owned(),
            Object {
                body,
                version: version.clone(),
            },
        );
        Ok(version)
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        validate_prefix(prefix)?;
        Ok(self
            .lock()
            .range(prefix.to_owned()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, _)| k.clone())
            .collect())
    }
}
