//! The one error type of the core, shared by every adapter crate.

use std::fmt;

/// A boxed error from a backend (an SDK, the OS, an HTTP client) kept as the `source` of an
/// [`Error`] so the chain is not lost.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// `Result` with the core [`Error`] by default.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in cryptomon's core. Each variant names the key, source or pair
/// involved so a one-line message is enough to act on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A store key that is malformed or could escape a file store's root.
    #[error("invalid store key {key:?}: {reason}")]
    InvalidKey {
        /// The key as given.
        key: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A `PutMode::Create` write found the key already present.
    #[error("store key {key:?} already exists")]
    AlreadyExists {
        /// The key.
        key: String,
    },
    /// A `PutMode::Update` write found another version than the one it expected.
    #[error("store key {key:?} changed since it was read (conditional write refused)")]
    Precondition {
        /// The key.
        key: String,
    },
    /// A store backend failed on a key (I/O error, network, permissions).
    #[error("store {op} of {key:?} failed: {source}")]
    Store {
        /// The operation: `get`, `put`, `list`.
        op: &'static str,
        /// The key or prefix.
        key: String,
        /// Whether retrying the same call may succeed (throttling, timeouts, 5xx).
        retryable: bool,
        /// The backend's error.
        #[source]
        source: BoxError,
    },
    /// A store that cannot be used at all (missing root directory, unknown bucket).
    #[error("store {location}: {reason}")]
    StoreUnavailable {
        /// The directory or bucket.
        location: String,
        /// Why.
        reason: String,
    },
    /// A pair that is not canonical `BASE-QUOTE`.
    #[error("invalid pair {pair:?}: {reason}")]
    InvalidPair {
        /// The pair as given.
        pair: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A source name that is not a lower-case identifier usable in a store key.
    #[error("invalid source name {source_name:?}: {reason}")]
    InvalidSource {
        /// The name as given.
        source_name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A snapshot refused by validation; nothing was written.
    #[error("invalid snapshot from {source_name}{}: {reason}", pair_suffix(.pair))]
    InvalidSnapshot {
        /// The snapshot's source.
        source_name: String,
        /// The offending pair, where one is to blame.
        pair: Option<String>,
        /// What is wrong.
        reason: String,
    },
    /// A backfill object refused by validation; nothing was written.
    #[error("invalid backfill object from {source_name} for {hour}{}: {reason}", pair_suffix(.pair))]
    InvalidBackfill {
        /// The object's source.
        source_name: String,
        /// The object's hour.
        hour: crate::model::Tick,
        /// The offending pair, where one is to blame.
        pair: Option<String>,
        /// What is wrong.
        reason: String,
    },
    /// A stored object that could not be decoded.
    #[error("cannot decode {key:?}: {reason}")]
    Decode {
        /// The key of the object.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A source (exchange API, synthetic market) failed to produce quotes.
    #[error("source {source_name} failed: {message}")]
    Source {
        /// The source.
        source_name: String,
        /// What happened, without secrets.
        message: String,
        /// Whether a later attempt may succeed.
        retryable: bool,
    },
    /// The store holds no readable snapshot to transform.
    #[error("the store holds no readable snapshot under {prefix:?}")]
    NoData {
        /// The prefix that was listed.
        prefix: String,
    },
    /// A series asked for that the window does not hold.
    #[error("unknown series {source_name}:{pair}")]
    UnknownSeries {
        /// The source.
        source_name: String,
        /// The pair.
        pair: String,
    },
    /// An alert could not be delivered to a sink (it stays queued).
    /// A candle range asks for more candles than one answer holds.
    #[error(
        "the range holds up to {candles} candles of {interval}, more than the cap of {max}: \
         choose a coarser interval or a shorter range"
    )]
    TooManyCandles {
        /// Candles the range could hold.
        candles: i64,
        /// The interval asked for.
        interval: crate::model::CandleInterval,
        /// The cap.
        max: i64,
    },
    /// Delivering an alert failed.
    #[error("alert delivery to {sink} failed: {message}")]
    Delivery {
        /// The sink: a webhook's URL, an SNS topic.
        sink: String,
        /// What happened, without secrets.
        message: String,
    },
    /// An invalid configuration value.
    #[error("config: {0}")]
    Config(String),
    /// The metric engine (polars) failed; a bug, since the engine's input is validated.
    #[error("metric engine: {0}")]
    Engine(String),
}

fn pair_suffix(pair: &Option<String>) -> String {
    pair.as_ref().map(|p| format!(" ({p})")).unwrap_or_default()
}

impl Error {
    /// Whether the failed operation may succeed if simply tried again.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Store { retryable, .. } | Error::Source { retryable, .. } => *retryable,
            Error::Precondition { .. } | Error::Delivery { .. } => true,
            _ => false,
        }
    }

    pub(crate) fn store(
        op: &'static str,
        key: impl Into<String>,
        retryable: bool,
        source: impl Into<BoxError>,
    ) -> Self {
        Error::Store {
            op,
            key: key.into(),
            retryable,
            source: source.into(),
        }
    }
}

impl From<polars::error::PolarsError> for Error {
    fn from(e: polars::error::PolarsError) -> Self {
        Error::Engine(e.to_string())
    }
}

/// A plain message as a [`BoxError`] source.
#[derive(Debug)]
pub(crate) struct Message(pub(crate) String);

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Message {}
