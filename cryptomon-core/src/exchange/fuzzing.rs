//! Entry points for the fuzz targets in `fuzz/`: each exchange's reading of an answer and the
//! HTTP layer's reading of rate-limit headers, without the network. Not part of the API.

use std::sync::OnceLock;

use bytes::Bytes;
use chrono::Utc;

use super::binance::Binance;
use super::coinbase::Coinbase;
use super::coingecko::Coingecko;
use super::http::HttpPolicy;
use super::http_source::{Exchange, HttpSource};
use super::kraken::Kraken;
use super::reply::Reply;
use crate::config::Config;
pub use crate::config::ExchangeKind;
use crate::error::Result;
use crate::secrets::Secrets;
use crate::source::Fetched;

/// One source of each kind, built once: Binance for every market (its symbol splitting),
/// the others for the pairs of the recorded fixtures, under the names Kraken answers with.
struct Sources {
    binance: HttpSource<Binance>,
    coinbase: HttpSource<Coinbase>,
    coingecko: HttpSource<Coingecko>,
    kraken: HttpSource<Kraken>,
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
        let (policy, secrets) = (HttpPolicy::default(), Secrets::default());
        let entry = |i: usize| &config.sources[i];
        Sources {
            binance: HttpSource::new(entry(0), &policy, &secrets).expect("binance"),
            coinbase: HttpSource::new(entry(1), &policy, &secrets).expect("coinbase"),
            coingecko: HttpSource::new(entry(2), &policy, &secrets).expect("coingecko"),
            kraken: HttpSource::new(entry(3), &policy, &secrets).expect("kraken"),
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
        pause: super::throttle::cooldown(retry_after.unwrap_or(policy.rate_limit_pause)),
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
    match kind {
        ExchangeKind::Binance => read(&s.binance, vec![Ok(reply(body))]),
        ExchangeKind::Coingecko => read(&s.coingecko, vec![Ok(reply(body))]),
        ExchangeKind::Kraken => read(&s.kraken, vec![Ok(reply(body))]),
        ExchangeKind::Coinbase => {
            let (ticker, stats) = match body.iter().position(|b| *b == 0) {
                Some(at) => (&body[..at], Some(&body[at + 1..])),
                None => (body, None),
            };
            let stats = match stats {
                Some(stats) => Ok(reply(stats)),
                None => Err(crate::Error::Source {
                    source_name: "coinbase".into(),
                    message: "no stats answer".into(),
                    retryable: false,
                }),
            };
            read(&s.coinbase, vec![Ok(reply(ticker)), stats])
        }
    }
}

/// What `source` makes of `replies` to its requests, as `fetch` would.
fn read<E: Exchange>(source: &HttpSource<E>, replies: Vec<Result<Reply>>) -> Result<Fetched> {
    let requests = source.exchange().requests();
    source.read(&requests, replies, Utc::now())
}

#[cfg(test)]
mod tests {
    use super::{ExchangeKind, read_answer};

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
