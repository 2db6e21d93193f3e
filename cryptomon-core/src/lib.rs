//! cryptomon's core: the data model of the contract, the [`Source`], [`Store`] and
//! [`Aggregator`] traits, the polars metric engine and the pipelines every adapter runs.
//!
//! The pure part (model, engine) needs no network, no AWS and no async runtime. Adapters that do
//! sit behind cargo features: `fs` (default) for [`FsStore`], `s3` for `S3Store` (aws-sdk-s3),
//! `exchanges` for the live exchange sources, `webhooks` for webhook delivery, and `openapi`
//! for the `utoipa::ToSchema` schemas of the contract's documents.
//!
//! # Layout
//!
//! - [`model`]: pairs, ticks, quotes, snapshots, summaries, candles: the contract's types.
//! - [`keys`]: the store keys of the contract and the rules every key follows.
//! - [`store`]: the [`Store`] trait, [`StoreExt`] conveniences and [`FsStore`].
//! - [`source`]: the [`Source`] trait.
//! - [`candle_source`]: the [`CandleSource`] trait, one-minute candles for a backfill.
//! - [`alerting`]: alert rules, their evaluation at each transform, events, cooldown, and the
//!   [`Notifier`](alerting::Notifier)s that deliver them.
//! - [`config`]: the configuration file (`cryptomon.toml`): interval and sources, with the checks
//!   every exchange shares.
//! - [`secrets`]: [`Secrets`](secrets::Secrets), the values `api_key_env` and `secret_env` name:
//!   given ones first, then the environment.
//! - `exchange` (feature `exchanges`): Coinbase, Kraken, Binance and CoinGecko sources, one
//!   generic HTTP source over a per-exchange trait, each exchange's rules for its entries, and
//!   `build_sources`, which turns a [`config::Config`] into sources.
//! - [`engine`]: the [`Window`] of samples (a polars `DataFrame`), the [`Aggregator`] trait and
//!   [`PolarsAggregator`], and the candle and point views.
//! - [`pipeline`]: [`collect`] and [`transform`], used by the CLI, the server and the Lambdas.
//! - [`error`]: the one [`Error`] type.
//!
//! # Example
//!
//! Aggregate two samples and read the summary:
//!
//! ```
//! use cryptomon_core::{Aggregator, Pair, PolarsAggregator, SourceName, Tick, WindowBuilder};
//!
//! let (source, pair) = (SourceName::new("kraken")?, Pair::new("BTC-USD")?);
//! let t0 = Tick::parse("2026-11-27T12:00:00Z")?;
//! let mut window = WindowBuilder::new();
//! window.push(&source, &pair, t0, 0, 100.0, Some(5.0));
//! window.push(&source, &pair, t0.add_secs(60), 0, 110.0, None);
//! let summary = PolarsAggregator::default().aggregate(&window.build()?, t0.add_secs(60))?;
//! assert_eq!(summary.series[0].samples, 2);
//! assert!((summary.series[0].change_pct - 10.0).abs() < 1e-9);
//! # Ok::<(), cryptomon_core::Error>(())
//! ```

pub mod alerting;
pub mod candle_source;
pub mod config;
pub mod engine;
pub mod error;
#[cfg(feature = "exchanges")]
pub mod exchange;
pub mod keys;
pub mod model;
pub mod pipeline;
pub mod secrets;
pub mod source;
pub mod store;

pub use candle_source::{CandleSource, DynCandleSource, MinuteCandle};
pub use engine::{Aggregator, PolarsAggregator, SeriesKey, WINDOW_MINUTES, Window, WindowBuilder};
pub use error::{Error, Result};
pub use model::{
    Alert, Candle, CandleInterval, Candles, Measure, Pair, Point, Quote, SeriesSummary, Snapshot,
    SourceName, Spread, Summary, Tick,
};
pub use pipeline::{CollectReport, TransformReport, collect, collect_all, transform};
pub use source::{DynSource, Fetched, Source};
#[cfg(feature = "fs")]
pub use store::FsStore;
pub use store::{DynStore, Fetch, Object, PutMode, Store, StoreExt, Version};
#[cfg(feature = "s3")]
pub use store::{S3Location, S3Store};
