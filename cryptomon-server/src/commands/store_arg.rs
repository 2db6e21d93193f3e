//! The `--store` argument: where snapshots and aggregates live.

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use anyhow::Context;
use cryptomon_core::{DynStore, FsStore, S3Location, S3Store};

/// A store location as given on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StoreArg {
    /// A directory: the embedded file store.
    Dir(PathBuf),
    /// `s3://bucket/prefix`: an S3 bucket (or S3-compatible server, through `AWS_ENDPOINT_URL`).
    S3 {
        /// The bucket.
        bucket: String,
        /// The key prefix inside it: empty or ending in `/`.
        prefix: String,
    },
}

impl FromStr for StoreArg {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            return Err("empty store location".into());
        }
        if s.starts_with("s3://") {
            let location = S3Location::parse(s).map_err(|e| e.to_string())?;
            return Ok(StoreArg::S3 {
                bucket: location.bucket().to_owned(),
                prefix: location.prefix().to_owned(),
            });
        }
        if let Some((scheme, _)) = s.split_once("://") {
            return Err(format!(
                "unsupported store scheme {scheme:?}: give a directory or s3://bucket/prefix"
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
            StoreArg::S3 { bucket, prefix } => open_s3(bucket, prefix),
        }
    }

    /// Opens a store, creating it if needed (for commands that write).
    pub(crate) fn open_or_create(&self) -> anyhow::Result<DynStore> {
        match self {
            StoreArg::Dir(path) => Ok(Arc::new(
                FsStore::create(path).context("cannot open the store")?,
            )),
            // A bucket is infrastructure (the SAM stack creates it), never made on the fly.
            StoreArg::S3 { bucket, prefix } => open_s3(bucket, prefix),
        }
    }
}

/// An `S3Store` configured from the standard AWS environment (`AWS_ENDPOINT_URL`,
/// `AWS_REGION`, credentials).
fn open_s3(bucket: &str, prefix: &str) -> anyhow::Result<DynStore> {
    let location = S3Location::new(bucket, prefix).context("invalid S3 store location")?;
    // The AWS config loader is async, while opening a store is not; loading it on a scoped
    // thread with its own small runtime works from any caller, inside a runtime or not. The
    // client it builds is not tied to that runtime.
    let store = std::thread::scope(|scope| {
        scope
            .spawn(|| {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map(|rt| rt.block_on(S3Store::from_env(location)))
            })
            .join()
    })
    .map_err(|_| anyhow::anyhow!("loading the AWS configuration panicked"))?
    .context("cannot start a runtime to load the AWS configuration")?;
    Ok(Arc::new(store))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_directories_and_buckets() {
        assert_eq!(
            "data/store".parse::<StoreArg>(),
            Ok(StoreArg::Dir(PathBuf::from("data/store")))
        );
        assert_eq!(
            "s3://market-data/prod".parse::<StoreArg>(),
            Ok(StoreArg::S3 {
                bucket: "market-data".into(),
                prefix: "prod/".into()
            })
        );
        assert_eq!(
            "s3://market-data".parse::<StoreArg>(),
            Ok(StoreArg::S3 {
                bucket: "market-data".into(),
                prefix: String::new()
            })
        );
        let err = "s3://Market_Data/p".parse::<StoreArg>().unwrap_err();
        assert!(err.contains("invalid bucket name"), "{err}");
        let err = "gs://bucket/p".parse::<StoreArg>().unwrap_err();
        assert!(err.contains("s3://bucket/prefix"), "{err}");
    }
}
