//! The `--store` argument: where snapshots and aggregates live.

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use anyhow::Context;
use cryptomon_core::{DynStore, FsStore};

/// A store location as given on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StoreArg {
    /// A directory: the embedded file store.
    Dir(PathBuf),
}

impl FromStr for StoreArg {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            return Err("empty store location".into());
        }
        if let Some((scheme, _)) = s.split_once("://") {
            return Err(format!(
                "unsupported store scheme {scheme:?}: give a directory"
            ));
        }
        Ok(StoreArg::Dir(PathBuf::from(s)))
    }
}

impl StoreArg {
    /// Opens a store that must already exist (for commands that read).
    pub(crate) fn open_existing(&self) -> anyhow::Result<DynStore> {
        match self {
            StoreArg::Dir(path) => Ok(Arc::new(
                FsStore::open(path).context("cannot open the store")?,
            )),
        }
    }

    /// Opens a store, creating it if needed (for commands that write).
    pub(crate) fn open_or_create(&self) -> anyhow::Result<DynStore> {
        match self {
            StoreArg::Dir(path) => Ok(Arc::new(
                FsStore::create(path).context("cannot open the store")?,
            )),
        }
    }
}
