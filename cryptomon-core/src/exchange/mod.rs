//! Live exchange sources (feature `exchanges`): Coinbase, Kraken, Binance and CoinGecko over
//! HTTPS, built from the [`Config`].
//!
//! Each exchange has its module and its [`Source`](crate::Source): it builds the request, maps the exchange's
//! names to canonical pairs and reads the body strictly (numbers as strings or JSON numbers,
//! exponents, nulls). What they share lives beside them:
//!
//! - `http`: the reqwest client, timeouts, retries with backoff and jitter, `Retry-After`, the
//!   per-exchange request rate and the time budget of a fetch ([`HttpPolicy`]).
//! - `decimal`: the strict number type of the bodies.
//! - `batch`: the quotes of one answer, checked, each pair once, with what was dropped and why.
//!
//! Every source follows the [`Source`](crate::Source) contract: quotes it cannot vouch for are dropped and
//! listed in `problems`; an answer without a valid quote, an error body or a transport failure is
//! an [`Error::Source`] saying whether a later attempt may succeed.
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
use crate::secrets::Secrets;
use crate::source::DynSource;

/// The sources of `config`, in file order, with the default [`HttpPolicy`] for its interval
/// (each entry's `timeout_secs` overriding the policy's timeout) and API keys from `secrets`.
///
/// Fails, naming the entry, if a source cannot be built: an API key that `secrets` lacks.
pub fn build_sources(config: &Config, secrets: &Secrets) -> Result<Vec<DynSource>> {
    build_sources_with(
        config,
        &HttpPolicy::for_interval(config.interval_secs),
        secrets,
    )
}

/// [`build_sources`] with a given policy. Sources of one exchange share one request rate and
/// one rate-limit pause, as the exchange counts them per IP.
pub fn build_sources_with(
    config: &Config,
    policy: &HttpPolicy,
    secrets: &Secrets,
) -> Result<Vec<DynSource>> {
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
            build_one(entry, &policy, secrets, gate).map_err(|e| {
                Error::Config(format!("sources[{index}] ({}): {}", entry.kind, message(e)))
            })
        })
        .collect()
}

fn build_one(
    entry: &SourceConfig,
    policy: &HttpPolicy,
    secrets: &Secrets,
    gate: Arc<http::Gate>,
) -> Result<DynSource> {
    Ok(match entry.kind {
        ExchangeKind::Coinbase => Arc::new(CoinbaseSource::with_gate(entry, policy, gate)?),
        ExchangeKind::Kraken => Arc::new(KrakenSource::with_gate(entry, policy, gate)?),
        ExchangeKind::Binance => Arc::new(BinanceSource::with_gate(entry, policy, gate)?),
        ExchangeKind::Coingecko => {
            Arc::new(CoingeckoSource::with_gate(entry, policy, secrets, gate)?)
        }
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

/// Entry points for the fuzz targets in `fuzz/`: each exchange's reading of an answer, without
/// the network. Not part of the API.
#[doc(hidden)]
pub mod fuzzing {
    use std::sync::OnceLock;

    use bytes::Bytes;
    use chrono::Utc;

    use super::http::{HttpPolicy, Reply};
    use super::{BinanceSource, CoinbaseSource, CoingeckoSource, KrakenSource};
    use crate::config::Config;
    pub use crate::config::ExchangeKind;
    use crate::error::Result;
    use crate::source::Fetched;

    /// One source of each kind, built once: Binance for every market (its symbol splitting),
    /// the others for the pairs of the recorded fixtures, under the names Kraken answers with.
    struct Sources {
        binance: BinanceSource,
        coinbase: CoinbaseSource,
        coingecko: CoingeckoSource,
        kraken: KrakenSource,
    }

    const CONFIG: &str = r#"
        [[sources]]
        kind = "binance"
        pairs = "all"
        [[sources]]
        kind = "coinbase"
        pairs = ["BTC-USD"]
        [[sources]]
        kind = "coingecko"
        pairs = ["BTC-USD", "ETH-USD", "AKT-USD"]
        ids = { "AKT-USD" = "akash-network" }
        [[sources]]
        kind = "kraken"
        pairs = ["BTC-USD", "BTC-USDT", "DOGE-USD", "ETH-USD"]
    "#;

    fn sources() -> &'static Sources {
        static SOURCES: OnceLock<Sources> = OnceLock::new();
        SOURCES.get_or_init(|| {
            let config = Config::from_toml_str(CONFIG).expect("the fuzzing config is valid");
            let policy = HttpPolicy::default();
            let entry = |i: usize| &config.sources[i];
            Sources {
                binance: BinanceSource::new(entry(0), &policy).expect("binance"),
                coinbase: CoinbaseSource::new(entry(1), &policy).expect("coinbase"),
                coingecko: CoingeckoSource::new(entry(2), &policy, &Default::default())
                    .expect("coingecko"),
                kraken: KrakenSource::new(entry(3), &policy).expect("kraken"),
            }
        })
    }

    /// What the HTTP layer reads from a 429 answer's headers (`name: value` lines; those that
    /// are not a valid header are left out, as the HTTP parser would refuse them).
    #[derive(Debug, Clone, PartialEq)]
    pub struct RateLimitReading {
        /// `Retry-After`, if readable.
        pub retry_after: Option<std::time::Duration>,
        /// The delay before the retry, or `None` to give up for the tick.
        pub retry_in: Option<std::time::Duration>,
        /// How long the exchange is then left alone.
        pub pause: std::time::Duration,
    }

    /// The HTTP layer's reading of `head` (header lines) for a 429, after a backoff of
    /// `backoff`, with `left` of the fetch's budget.
    pub fn read_rate_limit(
        head: &[u8],
        backoff: std::time::Duration,
        left: std::time::Duration,
    ) -> RateLimitReading {
        use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
        let mut headers = HeaderMap::new();
        for line in head.split(|b| *b == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let Some(colon) = line.iter().position(|b| *b == b':') else {
                continue;
            };
            let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(&line[..colon]),
                HeaderValue::from_bytes(line[colon + 1..].trim_ascii()),
            ) else {
                continue;
            };
            headers.append(name, value);
        }
        let retry_after = super::http::retry_after_of(&headers);
        let policy = HttpPolicy::default();
        RateLimitReading {
            retry_after,
            retry_in: super::http::rate_limit_retry(&headers, backoff, left),
            pause: super::http::cooldown(retry_after.unwrap_or(policy.rate_limit_pause)),
        }
    }

    /// What the source of `kind` makes of an answer with HTTP `status` and `body`, as `fetch`
    /// would. Coinbase asks two endpoints per product: `body` is the ticker's answer up to the
    /// first NUL byte, the stats' answer after it (none: the stats request failed).
    pub fn read_answer(kind: ExchangeKind, status: u16, body: &[u8]) -> Result<Fetched> {
        let s = sources();
        let reply = |body: &[u8]| Reply {
            status,
            body: Bytes::copy_from_slice(body),
        };
        let now = Utc::now();
        match kind {
            ExchangeKind::Binance => s.binance.read(&reply(body), now),
            ExchangeKind::Coingecko => s.coingecko.read(&reply(body), now),
            ExchangeKind::Kraken => s.kraken.read(&reply(body), now),
            ExchangeKind::Coinbase => {
                let (ticker, stats) = match body.iter().position(|b| *b == 0) {
                    Some(at) => (&body[..at], Some(&body[at + 1..])),
                    None => (body, None),
                };
                let url = "https://fuzz.invalid/products/BTC-USD";
                let ticker = s.coinbase.read_endpoint(url, &reply(ticker));
                let stats = match stats {
                    Some(stats) => s.coinbase.read_endpoint(url, &reply(stats)),
                    None => Err(crate::Error::Source {
                        source_name: "coinbase".into(),
                        message: "no stats answer".into(),
                        retryable: false,
                    }),
                };
                s.coinbase.assemble(vec![(ticker, stats)], now)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fuzzing::{ExchangeKind, read_answer};

    fn fixture(path: &str) -> Vec<u8> {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/");
        std::fs::read(format!("{dir}{path}")).unwrap()
    }

    /// The fuzz targets start from the fixtures: the hook must read them as `fetch` does.
    #[test]
    fn fuzzing_hook_reads_the_fixtures_as_fetch_does() {
        let quotes = |kind, status, body: &[u8]| read_answer(kind, status, body).map(|f| f.quotes);
        let binance = fixture("binance/ticker_24hr_docs_example_full.json");
        assert_eq!(
            quotes(ExchangeKind::Binance, 200, &binance).unwrap().len(),
            1
        );
        let gecko = fixture("coingecko/simple_price_btc_eth_CONSTRUCTED.json");
        assert_eq!(
            quotes(ExchangeKind::Coingecko, 200, &gecko).unwrap().len(),
            2
        );
        let kraken = fixture("kraken/ticker_renamed_pairs_CONSTRUCTED.json");
        // Four markets, ETH's with a last price of 0: dropped.
        assert_eq!(quotes(ExchangeKind::Kraken, 200, &kraken).unwrap().len(), 3);
        let mut coinbase = fixture("coinbase/ticker_btc-usd_live_2026-06-19.json");
        coinbase.push(0);
        coinbase.extend(fixture("coinbase/stats_btc-usd_live_2026-06-19.json"));
        let q = quotes(ExchangeKind::Coinbase, 200, &coinbase).unwrap();
        assert!(q[0].high_24h.is_some(), "stats after the NUL byte are read");

        let err = read_answer(
            ExchangeKind::Binance,
            429,
            &fixture("binance/error_429_too_much_weight.json"),
        )
        .unwrap_err();
        assert!(err.to_string().contains("HTTP 429"), "{err}");
    }
}
