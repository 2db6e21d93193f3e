//! Live exchange sources (feature `exchanges`): Coinbase, Kraken, Binance and CoinGecko over
//! HTTPS, built from the [`Config`].
//!
//! Each exchange has its module and its [`Source`]: it builds the request, maps the exchange's
//! names to canonical pairs and reads the body strictly (numbers as strings or JSON numbers,
//! exponents, nulls). What they share lives beside them:
//!
//! - `http`: the reqwest client, timeouts, retries with backoff and jitter, `Retry-After`, the
//!   per-exchange request rate and the time budget of a fetch ([`HttpPolicy`]).
//! - `decimal`: the strict number type of the bodies.
//! - `batch`: the quotes of one answer, checked, each pair once, with what was dropped and why.
//!
//! Every source follows the [`Source`] contract: quotes it cannot vouch for are dropped and
//! listed in `problems`; an answer without a valid quote, an error body or a transport failure is
//! an [`Error::Source`](crate::Error::Source) saying whether a later attempt may succeed.
//!
//! ```no_run
//! # async fn run() -> cryptomon_core::Result<()> {
//! use cryptomon_core::config::Config;
//! use cryptomon_core::{exchange, Tick};
//!
//! let sources = exchange::build_sources(&Config::default())?;
//! let fetched = sources[0].fetch(Tick::from_unix(0)).await?;
//! println!("{} quotes from {}", fetched.quotes.len(), sources[0].name());
//! # Ok(()) }
//! ```

mod batch;
mod binance;
mod coinbase;
mod coingecko;
mod decimal;
mod http;
mod kraken;
mod limiter;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

pub use binance::BinanceSource;
pub use coinbase::CoinbaseSource;
pub use coingecko::CoingeckoSource;
pub use http::HttpPolicy;
pub use kraken::KrakenSource;

use crate::config::{Config, ExchangeKind, SourceConfig};
use crate::error::{Error, Result};
use crate::source::DynSource;

/// The sources of `config`, in file order, with the default [`HttpPolicy`] for its interval
/// (each entry's `timeout_secs` overriding the policy's timeout).
///
/// Fails, naming the entry, if a source cannot be built: an API key variable that is not set.
pub fn build_sources(config: &Config) -> Result<Vec<DynSource>> {
    build_sources_with(config, &HttpPolicy::for_interval(config.interval_secs))
}

/// [`build_sources`] with a given policy. Sources of one exchange share one request rate and
/// one rate-limit pause, as the exchange counts them per IP.
pub fn build_sources_with(config: &Config, policy: &HttpPolicy) -> Result<Vec<DynSource>> {
    let mut gates = HashMap::new();
    config
        .sources
        .iter()
        .enumerate()
        .map(|(index, entry)| {
            let mut policy = policy.clone();
            if let Some(secs) = entry.timeout_secs {
                policy.timeout = Some(Duration::from_secs(secs));
            }
            let gate = gates
                .entry(entry.kind)
                .or_insert_with(|| {
                    let (count, period) = rate(entry.kind);
                    http::Gate::new(count, period)
                })
                .clone();
            build_one(entry, &policy, gate).map_err(|e| {
                Error::Config(format!("sources[{index}] ({}): {}", entry.kind, message(e)))
            })
        })
        .collect()
}

fn build_one(
    entry: &SourceConfig,
    policy: &HttpPolicy,
    gate: Arc<http::Gate>,
) -> Result<DynSource> {
    Ok(match entry.kind {
        ExchangeKind::Coinbase => Arc::new(CoinbaseSource::with_gate(entry, policy, gate)?),
        ExchangeKind::Kraken => Arc::new(KrakenSource::with_gate(entry, policy, gate)?),
        ExchangeKind::Binance => Arc::new(BinanceSource::with_gate(entry, policy, gate)?),
        ExchangeKind::Coingecko => Arc::new(CoingeckoSource::with_gate(entry, policy, gate)?),
    })
}

/// Requests per period each exchange is sent, from its documented public limits.
fn rate(kind: ExchangeKind) -> (u32, Duration) {
    match kind {
        ExchangeKind::Coinbase => coinbase::RATE,
        ExchangeKind::Kraken => kraken::RATE,
        ExchangeKind::Binance => binance::RATE,
        ExchangeKind::Coingecko => coingecko::RATE,
    }
}

fn message(e: Error) -> String {
    match e {
        Error::Config(m) => m,
        other => other.to_string(),
    }
}
