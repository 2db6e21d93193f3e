//! Live exchange sources (feature `exchanges`): Coinbase, Kraken, Binance and CoinGecko over
//! HTTPS, built from the [`Config`].
//!
//! # How a source is made
//!
//! Every exchange is one [`Source`](crate::Source), `HttpSource<E>`, generic over the
//! `Exchange` trait. An exchange's module implements that trait and holds everything that is
//! particular to it:
//!
//! - which `[[sources]]` entries it accepts (`Exchange::new`, which refuses the rest with a
//!   message naming the field or the pair) and its tables (CoinGecko's coin ids and currencies,
//!   Kraken's asset names, Binance's quote assets);
//! - its request rate, its requests and how many are in flight at once;
//! - the error its bodies carry, and the reading of its answers into quotes (numbers as strings
//!   or JSON numbers, exponents, nulls).
//!
//! What they share lives beside them:
//!
//! - `http_source`: `HttpSource` and the `Exchange` trait, with its contract.
//! - `http`: the reqwest client, timeouts, retries with backoff and jitter, `Retry-After` and
//!   the time budget of a fetch ([`HttpPolicy`]).
//! - `throttle`: what the sources of one exchange share, its request rate and the pause it asked
//!   for after a rate limit.
//! - `reply`: the response a request ends with, and the short view of a body that errors quote.
//! - `rules`: the entry checks several exchanges share (fields only one exchange uses).
//! - `batch`: the quotes of one answer, checked, each pair once, with what was dropped and why.
//! - `decimal`: the strict number type of the bodies.
//! - `limiter`: the request rate, a token bucket.
//! - `candles`: the one-minute candles of a backfill, `CandleClient` over each exchange's
//!   `CandleApi` (implemented in its module beside `Exchange`), and [`build_candle_sources`].
//!
//! The configuration file knows the exchanges only by name ([`ExchangeKind`]): [`validate`]
//! and [`build_sources`] ask each exchange whether it can serve its entries. Adding an exchange
//! is a module implementing `Exchange`, a variant of [`ExchangeKind`] and a line in
//! [`build_sources_with`] and [`validate`].
//!
//! Every source follows the [`Source`](crate::Source) contract: quotes it cannot vouch for are
//! dropped and listed in `problems`; an answer without a valid quote, an error body or a
//! transport failure is an [`Error::Source`] saying whether a later attempt may succeed.
//!
//! ```no_run
//! # async fn run() -> cryptomon_core::Result<()> {
//! use cryptomon_core::config::Config;
//! use cryptomon_core::secrets::Secrets;
//! use cryptomon_core::{exchange, Tick};
//!
//! let sources = exchange::build_sources(&Config::default(), &Secrets::default())?;
//! let fetched = sources[0].fetch(Tick::from_unix(0)).await?;
//! println!("{} quotes from {}", fetched.quotes.len(), sources[0].name());
//! # Ok(()) }
//! ```

mod batch;
mod binance;
mod candles;
mod coinbase;
mod coingecko;
mod decimal;
#[doc(hidden)]
pub mod fuzzing;
mod http;
mod http_source;
mod kraken;
mod limiter;
mod reply;
mod rules;
mod throttle;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

pub use candles::{backfill_policy, build_candle_sources, build_candle_sources_with};
pub use http::HttpPolicy;

use self::binance::Binance;
use self::coinbase::Coinbase;
use self::coingecko::Coingecko;
use self::http_source::{Exchange, HttpSource};
use self::kraken::Kraken;
use self::throttle::Throttle;
use crate::config::{Config, ExchangeKind, SourceConfig};
use crate::error::{Error, Result};
use crate::secrets::Secrets;
use crate::source::DynSource;

/// Checks that each exchange can serve its entries of `config` (pairs it can express, the fields
/// it uses), without building anything. Errors name the entry and, where one is to blame, the
/// pair, as [`Config::from_toml_str`]'s do; [`build_sources`] makes the same checks.
pub fn validate(config: &Config) -> Result<()> {
    fn accepts<E: Exchange>(entry: &SourceConfig) -> std::result::Result<(), String> {
        E::new(entry).map(drop)
    }
    for (index, entry) in config.sources.iter().enumerate() {
        match entry.kind {
            ExchangeKind::Coinbase => accepts::<Coinbase>(entry),
            ExchangeKind::Kraken => accepts::<Kraken>(entry),
            ExchangeKind::Binance => accepts::<Binance>(entry),
            ExchangeKind::Coingecko => accepts::<Coingecko>(entry),
        }
        .map_err(|why| entry_error(index, entry, Error::Config(why)))?;
    }
    Ok(())
}

/// The sources of `config`, in file order, with the default [`HttpPolicy`] for its interval
/// (each entry's `timeout_secs` overriding the policy's timeout) and API keys from `secrets`.
///
/// Fails, naming the entry, if a source cannot be built: an entry its exchange cannot serve
/// (see [`validate`]), or an API key that `secrets` lacks.
pub fn build_sources(config: &Config, secrets: &Secrets) -> Result<Vec<DynSource>> {
    build_sources_with(
        config,
        &HttpPolicy::for_interval(config.interval_secs),
        secrets,
    )
}

/// `policy` with the entry's own `timeout_secs`, if it sets one.
pub(super) fn entry_policy(policy: &HttpPolicy, entry: &SourceConfig) -> HttpPolicy {
    let mut policy = policy.clone();
    if let Some(secs) = entry.timeout_secs {
        policy.timeout = Some(Duration::from_secs(secs));
    }
    policy
}

/// [`build_sources`] with a given policy. Sources of one exchange share one request rate and
/// one rate-limit pause, as the exchange counts them per IP.
pub fn build_sources_with(
    config: &Config,
    policy: &HttpPolicy,
    secrets: &Secrets,
) -> Result<Vec<DynSource>> {
    let mut throttles = HashMap::new();
    config
        .sources
        .iter()
        .enumerate()
        .map(|(index, entry)| {
            let policy = entry_policy(policy, entry);
            let built = match entry.kind {
                ExchangeKind::Coinbase => {
                    build::<Coinbase>(entry, &policy, secrets, &mut throttles)
                }
                ExchangeKind::Kraken => build::<Kraken>(entry, &policy, secrets, &mut throttles),
                ExchangeKind::Binance => build::<Binance>(entry, &policy, secrets, &mut throttles),
                ExchangeKind::Coingecko => {
                    build::<Coingecko>(entry, &policy, secrets, &mut throttles)
                }
            };
            built.map_err(|e| entry_error(index, entry, e))
        })
        .collect()
}

/// The source of `entry`, sharing its exchange's throttle with the entries before it.
fn build<E: Exchange>(
    entry: &SourceConfig,
    policy: &HttpPolicy,
    secrets: &Secrets,
    throttles: &mut HashMap<ExchangeKind, Arc<Throttle>>,
) -> Result<DynSource> {
    let throttle = throttles
        .entry(entry.kind)
        .or_insert_with(|| Throttle::new(E::RATE.0, E::RATE.1))
        .clone();
    Ok(Arc::new(HttpSource::<E>::with_throttle(
        entry, policy, secrets, throttle,
    )?))
}

/// `e`, naming the entry as the configuration's own errors do (`sources[1] (kraken): ...`).
fn entry_error(index: usize, entry: &SourceConfig, e: Error) -> Error {
    let message = match e {
        Error::Config(m) => m,
        other => other.to_string(),
    };
    Error::Config(format!("sources[{index}] ({}): {message}", entry.kind))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Why `validate` refuses `text`.
    fn refusal(text: &str) -> String {
        let config = Config::from_toml_str(text).unwrap();
        let e = validate(&config).unwrap_err().to_string();
        let built = build_sources(&config, &Secrets::default()).unwrap_err();
        assert_eq!(
            built.to_string(),
            e,
            "building the sources makes the same check"
        );
        e
    }

    #[test]
    fn entries_an_exchange_cannot_serve_are_refused_naming_entry_and_pair() {
        let kraken = "[[sources]]\nkind = \"kraken\"\n";
        for (text, wanted) in [
            (
                "[[sources]]\nkind = \"coingecko\"\npairs = [\"BTC-USDT\"]\n".to_owned(),
                vec!["sources[0] (coingecko)", "BTC-USDT", "vs_currencies"],
            ),
            (
                "[[sources]]\nkind = \"coingecko\"\npairs = [\"AKT-USD\"]\n".to_owned(),
                vec!["sources[0] (coingecko)", "AKT-USD", "ids"],
            ),
            (
                format!("{kraken}pairs = \"all\"\n"),
                vec!["sources[0] (kraken)", "only supported by binance"],
            ),
            (
                format!("{kraken}api_key_env = \"K\"\n"),
                vec!["sources[0] (kraken)", "only used by coingecko"],
            ),
            (
                format!(
                    "{kraken}[[sources]]\nkind = \"coinbase\"\nids = {{ \"BTC-USD\" = \"x\" }}\n"
                ),
                vec!["sources[1] (coinbase)", "ids is only used by coingecko"],
            ),
        ] {
            let e = refusal(&text);
            assert!(wanted.iter().all(|w| e.contains(w)), "{text}: {e}");
        }
    }

    #[test]
    fn the_default_and_every_market_on_binance_are_served() {
        validate(&Config::default()).unwrap();
        let all = Config::from_toml_str("[[sources]]\nkind = \"binance\"\npairs = \"all\"\n");
        validate(&all.unwrap()).unwrap();
    }
}
