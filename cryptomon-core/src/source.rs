//! The [`Source`] trait: where quotes come from.

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::error::Result;
use crate::model::{Quote, SourceName, Tick};

/// What one fetch brought back.
#[derive(Debug, Clone, PartialEq)]
pub struct Fetched {
    /// The valid quotes, at most one per pair.
    pub quotes: Vec<Quote>,
    /// The response bodies verbatim (JSON), with any secret stripped.
    pub raw: serde_json::Value,
    /// When the answer arrived; becomes the snapshot's `collected_at`.
    pub fetched_at: DateTime<Utc>,
    /// What was dropped or missing (a bad price, a pair absent from the answer), one line each.
    pub problems: Vec<String>,
}

/// A market data source: an exchange API, a synthetic market.
///
/// One method to implement; the collect pipeline does validation, keying and storage.
///
/// # Contract
///
/// - [`Source::fetch`] returns the quotes of the source's configured pairs, with canonical
///   pairs, each pair at most once, every price finite and > 0. Quotes it cannot vouch for are
///   dropped and described in [`Fetched::problems`], never passed on.
/// - An answer with no valid quote, an error body, or a transport failure is an `Err`
///   ([`crate::Error::Source`]) that says whether a retry could help. A source does its own
///   retries and backoff within the tick; it never retries into the next tick.
/// - `tick` is the schedule slot being collected. Live sources may ignore it; synthetic ones use
///   it so the same tick always yields the same market.
/// - Secrets (API keys) never appear in `raw`, in `problems` or in errors.
#[async_trait]
pub trait Source: Send + Sync + Debug + 'static {
    /// The name snapshots and keys carry (`coinbase`).
    fn name(&self) -> &SourceName;

    /// Fetches the current quotes.
    async fn fetch(&self, tick: Tick) -> Result<Fetched>;
}

/// A shared, type-erased source.
pub type DynSource = Arc<dyn Source>;
