//! CoinGecko: `GET /simple/price?ids=bitcoin,...&vs_currencies=usd,...` with the 24-hour volume
//! and the update time, pairs mapped to coin ids by the config.
//!
//! CoinGecko is an aggregator: it gives a price, a 24-hour volume in the quote currency and the
//! time of its last update, nothing else. Unknown ids are silently left out of the answer, so
//! an entry is checked before start-up: every pair needs a coin id (the entry's `ids`, or the
//! built-in id of a well-known asset) and a quote among CoinGecko's `vs_currencies`.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::batch::QuoteBatch;
use super::candles::{CandleApi, Row};
use super::decimal::Decimal;
use super::http_source::{Exchange, Refusal, Request, sole_body};
use super::reply::excerpt;
use super::rules;
use crate::config::SourceConfig;
use crate::error::Result;
use crate::model::{Pair, Quote, Tick};

/// The header of a demo key (the public host), and of a pro key (the `pro-api` host).
const DEMO_KEY_HEADER: &str = "x-cg-demo-api-key";
const PRO_KEY_HEADER: &str = "x-cg-pro-api-key";

/// CoinGecko's simple prices for a list of pairs, each with its coin id.
#[derive(Debug)]
pub(crate) struct Coingecko {
    url: String,
    /// Pair, coin id, vs currency (lower case).
    pairs: Vec<(Pair, String, String)>,
    /// The header an API key goes in: the pro host's or the public host's.
    key_header: &'static str,
}

impl Coingecko {
    fn query(&self) -> Vec<(&'static str, String)> {
        let ids: BTreeSet<&str> = self.pairs.iter().map(|(_, id, _)| id.as_str()).collect();
        let vs: BTreeSet<&str> = self.pairs.iter().map(|(_, _, vs)| vs.as_str()).collect();
        vec![
            ("ids", ids.into_iter().collect::<Vec<_>>().join(",")),
            (
                "vs_currencies",
                vs.into_iter().collect::<Vec<_>>().join(","),
            ),
            ("include_24hr_vol", "true".to_owned()),
            ("include_last_updated_at", "true".to_owned()),
            ("precision", "full".to_owned()),
        ]
    }

    /// Reads each configured pair from the answer into `batch`.
    fn read_coins(&self, body: &Value, batch: &mut QuoteBatch) -> std::result::Result<(), String> {
        let Some(coins) = body.as_object() else {
            return Err(format!(
                "expected an object of coins, got {}",
                excerpt(body.to_string().as_bytes())
            ));
        };
        for (pair, id, vs) in &self.pairs {
            let Some(coin) = coins.get(id) else {
                batch.problem(format!("{pair}: missing from the answer (coin id {id:?})"));
                continue;
            };
            match quote(pair, coin, vs) {
                Ok(q) => batch.push(q),
                Err(why) => batch.problem(format!("{pair}: dropped: {why}")),
            }
        }
        Ok(())
    }
}

impl Exchange for Coingecko {
    /// Keyless callers get 5 to 30 calls a minute per IP; one call a tick plus a retry or two
    /// stays far under that.
    const RATE: (u32, Duration) = (1, Duration::from_secs(2));

    fn new(config: &SourceConfig) -> std::result::Result<Self, String> {
        let list = rules::listed_pairs(config)?;
        let ids = coin_ids(list, &config.ids)?;
        let pairs = list
            .iter()
            .map(|pair| {
                let id = ids[pair].clone();
                (pair.clone(), id, pair.quote().to_ascii_lowercase())
            })
            .collect();
        let key_header = if config.base_url.contains("pro-api.coingecko.com") {
            PRO_KEY_HEADER
        } else {
            DEMO_KEY_HEADER
        };
        Ok(Coingecko {
            url: format!("{}/simple/price", config.base_url),
            pairs,
            key_header,
        })
    }

    fn key_header(&self) -> Option<&'static str> {
        Some(self.key_header)
    }

    /// One `simple/price` call for every coin id and currency.
    fn requests(&self) -> Vec<Request> {
        vec![Request {
            url: self.url.clone(),
            query: self.query(),
        }]
    }

    /// The error in any of CoinGecko's shapes: `{"status": {"error_code", "error_message"}}`,
    /// `{"error_code", "status": {"error_message"}}`, `{"error": "..."}`.
    fn error(&self, body: &Value) -> Option<Refusal> {
        coingecko_error(body).map(Refusal::permanent)
    }

    fn parse(
        &self,
        bodies: Vec<Result<Value>>,
        batch: &mut QuoteBatch,
    ) -> std::result::Result<Value, String> {
        let body = sole_body(bodies)?;
        self.read_coins(&body, batch)?;
        Ok(body)
    }
}

/// CoinGecko has no one-minute candles: its `market_chart` picks the granularity itself (5
/// minutes for a day, hourly beyond), at times of its own rather than minute starts, and its
/// points are spot prices, not closes. A minute's close cannot be read from it, so a backfill
/// leaves CoinGecko's pairs unfilled and says why, without sending a request.
impl CandleApi for Coingecko {
    const RATE: (u32, Duration) = <Coingecko as Exchange>::RATE;
    const PAGE_MINUTES: Option<i64> = None;

    fn for_candles(config: &SourceConfig) -> std::result::Result<Self, String> {
        <Coingecko as Exchange>::new(config)
    }

    fn candle_pairs(&self) -> Vec<Pair> {
        self.pairs.iter().map(|(pair, _, _)| pair.clone()).collect()
    }

    fn unavailable(&self) -> Option<&'static str> {
        Some(
            "coingecko has no one-minute candles (its market chart gives 5-minute points for a \
             day, hourly beyond, at times of its own), so no minute's close can be backfilled",
        )
    }

    fn candle_request(&self, _pair: &Pair, _from: Tick, _to: Tick) -> Request {
        Request::to(self.url.clone())
    }

    fn candle_error(&self, body: &Value) -> Option<Refusal> {
        self.error(body)
    }

    fn rows(&self, _pair: &Pair, _body: &Value) -> std::result::Result<Vec<Row>, String> {
        Err("coingecko has no one-minute candles".to_owned())
    }
}

/// The coin id of each of `pairs`: the entry's `ids` first, then the built-in ids; or why a
/// pair cannot be asked for.
fn coin_ids(
    pairs: &[Pair],
    configured: &BTreeMap<Pair, String>,
) -> std::result::Result<BTreeMap<Pair, String>, String> {
    let at_pair = |pair: &Pair, detail: String| format!("pair {:?}: {detail}", pair.as_str());
    for (pair, id) in configured {
        if id.is_empty()
            || !id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        {
            return Err(at_pair(
                pair,
                format!("coin id {id:?} is not a CoinGecko id"),
            ));
        }
    }
    let mut ids = configured.clone();
    for pair in pairs {
        if !is_vs_currency(pair.quote()) {
            return Err(at_pair(
                pair,
                format!(
                    "coingecko cannot express it: {} is not one of its vs_currencies",
                    pair.quote()
                ),
            ));
        }
        if !ids.contains_key(pair) {
            let id = builtin_id(pair.base()).ok_or_else(|| {
                at_pair(
                    pair,
                    format!(
                        "coingecko needs a coin id for {}: add it under ids, e.g. \
                         ids = {{ \"{pair}\" = \"bitcoin\" }}",
                        pair.base()
                    ),
                )
            })?;
            ids.insert(pair.clone(), id.to_owned());
        }
    }
    // Ids for pairs that are not collected would be silently unused: most likely a typo.
    if let Some(extra) = ids.keys().find(|p| !pairs.contains(p)) {
        return Err(at_pair(
            extra,
            "has an id under ids but is not listed in pairs".to_owned(),
        ));
    }
    Ok(ids)
}

/// CoinGecko ids of well-known assets, so the common pairs need no `ids` table.
pub(crate) fn builtin_id(base: &str) -> Option<&'static str> {
    Some(match base {
        "BTC" => "bitcoin",
        "ETH" => "ethereum",
        "SOL" => "solana",
        "XRP" => "ripple",
        "DOGE" => "dogecoin",
        "ADA" => "cardano",
        "LTC" => "litecoin",
        "DOT" => "polkadot",
        "AVAX" => "avalanche-2",
        "LINK" => "chainlink",
        "BNB" => "binancecoin",
        "TRX" => "tron",
        "USDT" => "tether",
        "USDC" => "usd-coin",
        _ => return None,
    })
}

/// Whether CoinGecko prices assets in `quote` (its `vs_currencies`, upper-cased). USDT, for
/// one, is not among them.
fn is_vs_currency(quote: &str) -> bool {
    const VS_CURRENCIES: &[&str] = &[
        "BTC", "ETH", "LTC", "BCH", "BNB", "EOS", "XRP", "XLM", "LINK", "DOT", "YFI", "SOL", "USD",
        "AED", "ARS", "AUD", "BDT", "BHD", "BMD", "BRL", "CAD", "CHF", "CLP", "CNY", "CZK", "DKK",
        "EUR", "GBP", "GEL", "HKD", "HUF", "IDR", "ILS", "INR", "JPY", "KRW", "KWD", "LKR", "MMK",
        "MXN", "MYR", "NGN", "NOK", "NZD", "PHP", "PKR", "PLN", "RUB", "SAR", "SEK", "SGD", "THB",
        "TRY", "TWD", "UAH", "VEF", "VND", "ZAR", "XDR", "XAG", "XAU", "BITS", "SATS",
    ];
    VS_CURRENCIES.contains(&quote)
}

/// The quote of `pair` in one coin's prices: `{vs}` is the price, `{vs}_24h_vol` the volume in
/// the quote currency, `last_updated_at` Unix seconds. No bid, ask, base volume, high or low.
fn quote(pair: &Pair, coin: &Value, vs: &str) -> std::result::Result<Quote, String> {
    let decimal = |field: &str| -> std::result::Result<Option<f64>, String> {
        match coin.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => serde_json::from_value::<Decimal>(v.clone())
                .map(|d| Some(d.0))
                .map_err(|e| format!("{field}: {e}")),
        }
    };
    let price = decimal(vs)?.ok_or_else(|| format!("no {vs} price"))?;
    let mut q = Quote::new(pair.clone(), price);
    q.quote_volume_24h = decimal(&format!("{vs}_24h_vol"))?;
    q.exchange_time = coin
        .get("last_updated_at")
        .and_then(Value::as_i64)
        .and_then(|s| DateTime::<Utc>::from_timestamp(s, 0));
    Ok(q)
}

/// The message of an error body, with its code where it has one.
fn coingecko_error(body: &Value) -> Option<String> {
    let status = body.get("status");
    let message = status
        .and_then(|s| s.get("error_message"))
        .or_else(|| body.get("error"))
        .or_else(|| body.get("error_message"))?;
    let message = message
        .as_str()
        .map_or_else(|| message.to_string(), str::to_owned);
    let code = body
        .get("error_code")
        .or_else(|| status.and_then(|s| s.get("error_code")));
    Some(match code {
        Some(code) => format!("{message} (error code {code})"),
        None => message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, ExchangeKind};
    use crate::exchange::http_source::HttpSource;
    use crate::exchange::http_source::testing::{self, entry, read_ok};
    use crate::source::Fetched;
    use serde_json::json;

    fn source(pairs: &[(&str, &str)]) -> HttpSource<Coingecko> {
        let list: Vec<&str> = pairs.iter().map(|(p, _)| *p).collect();
        let mut entry = entry(ExchangeKind::Coingecko, Some(&list));
        entry.ids = pairs
            .iter()
            .map(|(p, id)| (Pair::new(p).unwrap(), (*id).to_owned()))
            .collect();
        testing::source(&entry)
    }

    fn parse(s: &HttpSource<Coingecko>, body: Value) -> Result<Fetched> {
        read_ok(s, body)
    }

    /// Why `text`'s one entry does not suit CoinGecko.
    fn refusal(text: &str) -> String {
        let config =
            Config::from_toml_str(&format!("[[sources]]\nkind = \"coingecko\"\n{text}")).unwrap();
        Coingecko::new(&config.sources[0]).unwrap_err()
    }

    #[test]
    fn coin_ids_come_from_the_entry_then_the_built_in_table() {
        let config = Config::from_toml_str(
            "[[sources]]\nkind = \"coingecko\"\npairs = [\"BTC-USD\", \"AKT-USD\"]\n\
             ids = { \"AKT-USD\" = \"akash-network\" }\n",
        )
        .unwrap();
        let c = Coingecko::new(&config.sources[0]).unwrap();
        let ids: Vec<_> = c
            .pairs
            .iter()
            .map(|(p, id, _)| (p.as_str(), id.as_str()))
            .collect();
        assert_eq!(ids, [("BTC-USD", "bitcoin"), ("AKT-USD", "akash-network")]);
        let default = Coingecko::new(&Config::default().sources[3]).unwrap();
        assert_eq!(default.pairs[2].1, "solana");
    }

    #[test]
    fn entries_it_cannot_serve_are_refused_naming_the_pair() {
        for (text, wanted) in [
            ("pairs = [\"BTC-USDT\"]", ["BTC-USDT", "vs_currencies"]),
            ("pairs = [\"AKT-USD\"]", ["AKT-USD", "add it under ids"]),
            ("pairs = \"all\"", ["pairs = \"all\"", "binance"]),
            (
                "pairs = [\"BTC-USD\"]\nids = { \"BTC-USD\" = \"bit coin\" }",
                ["BTC-USD", "is not a CoinGecko id"],
            ),
            (
                "pairs = [\"BTC-USD\"]\nids = { \"ETH-USD\" = \"ethereum\" }",
                ["ETH-USD", "not listed in pairs"],
            ),
        ] {
            let e = refusal(text);
            assert!(wanted.iter().all(|w| e.contains(w)), "{text}: {e}");
        }
    }

    #[test]
    fn query_groups_ids_and_currencies() {
        let s = source(&[
            ("BTC-USD", "bitcoin"),
            ("BTC-EUR", "bitcoin"),
            ("ETH-USD", "ethereum"),
        ]);
        let q = s.exchange().query();
        assert_eq!(q[0], ("ids", "bitcoin,ethereum".to_owned()));
        assert_eq!(q[1], ("vs_currencies", "eur,usd".to_owned()));
    }

    #[test]
    fn numbers_of_every_shape_and_null_volume() {
        let s = source(&[
            ("BTC-USD", "bitcoin"),
            ("ETH-USD", "ethereum"),
            ("PEPE-USD", "pepe"),
        ]);
        let f = parse(
            &s,
            json!({"bitcoin":{"usd":67187,"usd_24h_vol":3.1e10,"last_updated_at":1711356300},
                   "ethereum":{"usd":"3456.7","usd_24h_vol":null},
                   "pepe":{"usd":1.2e-5}}),
        )
        .unwrap();
        let q = &f.quotes;
        assert_eq!((q[0].price, q[0].quote_volume_24h), (67187.0, Some(3.1e10)));
        assert_eq!(q[0].exchange_time.unwrap().timestamp(), 1711356300);
        assert_eq!(
            (q[0].volume_24h, q[0].bid, q[0].high_24h),
            (None, None, None)
        );
        assert_eq!(
            (q[1].price, q[1].quote_volume_24h, q[1].exchange_time),
            (3456.7, None, None)
        );
        assert_eq!(q[2].price, 1.2e-5);
    }

    #[test]
    fn missing_ids_and_bad_prices_are_reported() {
        let s = source(&[
            ("BTC-USD", "bitcoin"),
            ("ETH-USD", "ethereum"),
            ("SOL-USD", "solana"),
        ]);
        let f = parse(&s, json!({"bitcoin":{"usd":1.0},"ethereum":{"usd":null}})).unwrap();
        assert_eq!(f.quotes.len(), 1);
        assert_eq!(
            f.problems,
            [
                "ETH-USD: dropped: no usd price",
                "SOL-USD: missing from the answer (coin id \"solana\")"
            ]
        );
        let e = parse(&s, json!({})).unwrap_err();
        assert!(e.to_string().contains("no valid quote"), "{e}");
    }

    #[test]
    fn every_error_shape() {
        for (body, want) in [
            (
                json!({"status":{"error_code":429,"error_message":"You've exceeded the Rate Limit."}}),
                "You've exceeded the Rate Limit. (error code 429)",
            ),
            (
                json!({"timestamp":"x","error_code":10011,"status":{"error_message":"use api.coingecko.com"}}),
                "use api.coingecko.com (error code 10011)",
            ),
            (json!({"error":"coin not found"}), "coin not found"),
        ] {
            assert_eq!(coingecko_error(&body).as_deref(), Some(want));
        }
        assert_eq!(coingecko_error(&json!({"bitcoin":{"usd":1}})), None);
    }
}
