//! Binance: `GET /api/v3/ticker/24hr`, for the configured symbols (`symbols=["BTCUSDT",...]`)
//! or, with `pairs = "all"`, for every market in one body (thousands of quotes); and for a
//! backfill `GET /api/v3/klines`, at most 1,000 one-minute candles a call.
//!
//! Binance glues base and quote together (`BTCUSDT`). Configured pairs map back by lookup; for
//! every market the quote asset is recognised from a list of the assets Binance quotes in,
//! longest first (`BTCFDUSD` is BTC-FDUSD, not BTCFD-USD).

use std::collections::HashMap;
use std::time::Duration;

use chrono::DateTime;
use serde::Deserialize;
use serde_json::Value;

use super::batch::QuoteBatch;
use super::candles::{CandleApi, Row, decimal, integer, read_rows};
use super::decimal::{Decimal, opt};
use super::http_source::{Exchange, Refusal, Request, sole_body};
use super::reply::excerpt;
use super::rules;
use crate::config::{PairSelection, SourceConfig};
use crate::error::Result;
use crate::model::{Pair, Quote, Tick};

/// The assets Binance quotes markets in, longest first so a longer one wins a shared suffix.
const QUOTE_ASSETS: &[&str] = &[
    "FDUSD", "USDT", "USDC", "TUSD", "BUSD", "USDP", "USDS", "USD1", "AEUR", "EURI", "IDRT",
    "BIDR", "BVND", "DOGE", "DAI", "BTC", "ETH", "BNB", "EUR", "TRY", "BRL", "GBP", "AUD", "JPY",
    "RUB", "UAH", "NGN", "ZAR", "PLN", "RON", "ARS", "MXN", "COP", "CZK", "KZT", "IDR", "XRP",
    "TRX", "DOT", "PAX", "VAI", "SOL",
];

/// The canonical pair of a Binance symbol, by its quote asset; `None` if no known quote asset
/// ends it or the rest is not a valid base.
pub(crate) fn split_symbol(symbol: &str) -> Option<Pair> {
    QUOTE_ASSETS.iter().find_map(|quote| {
        let base = symbol.strip_suffix(quote)?;
        (!base.is_empty()).then(|| Pair::from_parts(base, quote).ok())?
    })
}

/// One market of `ticker/24hr` (FULL or MINI form: bid and ask only in FULL).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Ticker {
    symbol: String,
    last_price: Decimal,
    #[serde(default)]
    bid_price: Option<Decimal>,
    #[serde(default)]
    ask_price: Option<Decimal>,
    #[serde(default)]
    volume: Option<Decimal>,
    #[serde(default)]
    quote_volume: Option<Decimal>,
    #[serde(default)]
    high_price: Option<Decimal>,
    #[serde(default)]
    low_price: Option<Decimal>,
    /// End of the 24-hour window, ms since the epoch: the time of the statistics.
    #[serde(default)]
    close_time: Option<i64>,
    /// Trades in the window; `0` with a `0` price marks a halted or delisted market.
    #[serde(default)]
    count: Option<i64>,
}

/// Binance's 24-hour tickers for a list of pairs or every market.
#[derive(Debug)]
pub(crate) struct Binance {
    url: String,
    /// `GET /api/v3/klines`, for a backfill.
    klines_url: String,
    /// `None` for every market.
    symbols: Option<Vec<(String, Pair)>>,
}

impl Binance {
    fn query(&self) -> Vec<(&'static str, String)> {
        match &self.symbols {
            None => vec![],
            Some(symbols) => {
                let list: Vec<String> = symbols.iter().map(|(s, _)| format!("{s:?}")).collect();
                vec![("symbols", format!("[{}]", list.join(",")))]
            }
        }
    }

    /// Reads the answer's markets into `batch`.
    fn read_markets(
        &self,
        body: &Value,
        batch: &mut QuoteBatch,
    ) -> std::result::Result<(), String> {
        let markets: Vec<&Value> = match body {
            Value::Array(items) => items.iter().collect(),
            // One symbol answers with a bare object.
            Value::Object(_) => vec![body],
            _ => {
                return Err(format!(
                    "expected a list of tickers, got {}",
                    excerpt(body.to_string().as_bytes())
                ));
            }
        };
        let lookup: Option<HashMap<&str, &Pair>> = self
            .symbols
            .as_ref()
            .map(|s| s.iter().map(|(sym, p)| (sym.as_str(), p)).collect());
        let (mut idle, mut unmapped) = (0usize, Vec::new());
        for market in markets {
            let t = match Ticker::deserialize(market) {
                Ok(t) => t,
                Err(e) => {
                    let symbol = market.get("symbol").and_then(Value::as_str).unwrap_or("?");
                    batch.problem(format!("{symbol}: dropped: {e}"));
                    continue;
                }
            };
            let pair = match &lookup {
                Some(lookup) => lookup.get(t.symbol.as_str()).map(|p| (*p).clone()),
                None => split_symbol(&t.symbol),
            };
            let Some(pair) = pair else {
                if self.symbols.is_some() {
                    batch.problem(format!("{}: not asked for, ignored", t.symbol));
                } else {
                    unmapped.push(t.symbol);
                }
                continue;
            };
            if self.symbols.is_none() && t.last_price.0 == 0.0 && t.count == Some(0) {
                idle += 1;
                continue;
            }
            batch.push(quote(pair, &t));
        }
        if idle > 0 {
            batch.problem(format!(
                "{idle} markets without a trade in 24 h (price 0, halted or delisted) skipped"
            ));
        }
        if !unmapped.is_empty() {
            let shown: Vec<&str> = unmapped.iter().take(10).map(String::as_str).collect();
            batch.problem(format!(
                "{} symbols not mapped to a pair and skipped: {}{}",
                unmapped.len(),
                shown.join(", "),
                if unmapped.len() > shown.len() {
                    ", ..."
                } else {
                    ""
                }
            ));
        }
        if let Some(symbols) = &self.symbols {
            batch.report_missing(symbols.iter().map(|(_, p)| p));
        }
        Ok(())
    }
}

impl Exchange for Binance {
    /// Far under the weight limit (6,000 a minute; the every-market ticker weighs 80), leaving
    /// room for retries.
    const RATE: (u32, Duration) = (5, Duration::from_secs(1));

    fn new(config: &SourceConfig) -> std::result::Result<Self, String> {
        rules::no_key_nor_ids(config)?;
        let symbols = match &config.pairs {
            PairSelection::All => None,
            PairSelection::List(pairs) => Some(
                pairs
                    .iter()
                    .map(|p| (format!("{}{}", p.base(), p.quote()), p.clone()))
                    .collect(),
            ),
        };
        Ok(Binance {
            url: format!("{}/api/v3/ticker/24hr", config.base_url),
            klines_url: format!("{}/api/v3/klines", config.base_url),
            symbols,
        })
    }

    /// One `ticker/24hr` call, for the listed symbols or every market.
    fn requests(&self) -> Vec<Request> {
        vec![Request {
            url: self.url.clone(),
            query: self.query(),
        }]
    }

    /// Binance's `{"code": -1121, "msg": "Invalid symbol."}`.
    fn error(&self, body: &Value) -> Option<Refusal> {
        let code = body.get("code")?;
        let msg = body.get("msg").and_then(Value::as_str).unwrap_or("");
        Some(Refusal::permanent(format!("{msg} (code {code})")))
    }

    fn parse(
        &self,
        bodies: Vec<Result<Value>>,
        batch: &mut QuoteBatch,
    ) -> std::result::Result<Value, String> {
        let body = sole_body(bodies)?;
        self.read_markets(&body, batch)?;
        Ok(body)
    }
}

impl CandleApi for Binance {
    const RATE: (u32, Duration) = <Binance as Exchange>::RATE;
    /// `limit=1000`, the most `klines` returns.
    const PAGE_MINUTES: Option<i64> = Some(1000);

    fn for_candles(config: &SourceConfig) -> std::result::Result<Self, String> {
        <Binance as Exchange>::new(config)
    }

    /// None with `pairs = "all"`: a backfill of every market is not attempted.
    fn candle_pairs(&self) -> Vec<Pair> {
        self.symbols
            .iter()
            .flatten()
            .map(|(_, pair)| pair.clone())
            .collect()
    }

    /// Times in ms, both ends included: `endTime` is the last millisecond wanted.
    fn candle_request(&self, pair: &Pair, from: Tick, to: Tick) -> Request {
        let symbol = format!("{}{}", pair.base(), pair.quote());
        Request {
            url: self.klines_url.clone(),
            query: vec![
                ("symbol", symbol),
                ("interval", "1m".to_owned()),
                ("startTime", (from.unix() * 1000).to_string()),
                ("endTime", (to.unix() * 1000 - 1).to_string()),
                ("limit", "1000".to_owned()),
            ],
        }
    }

    fn candle_error(&self, body: &Value) -> Option<Refusal> {
        self.error(body)
    }

    /// `[open time ms, open, high, low, close, volume, close time ms, quote volume, trades,
    /// ...]`, decimals as strings.
    fn rows(&self, _pair: &Pair, body: &Value) -> std::result::Result<Vec<Row>, String> {
        read_rows(body, |row| {
            let ms = integer(row, 0, "open time")?;
            if ms % 1000 != 0 {
                return Err(format!("open time: {ms} ms is not on a whole second"));
            }
            Ok(Row {
                time: ms / 1000,
                close: decimal(row, 4, "close")?,
                volume: Some(decimal(row, 5, "volume")?),
            })
        })
    }
}

/// The quote of a market. A `0` bid or ask means an empty book side, not a price of zero.
fn quote(pair: Pair, t: &Ticker) -> Quote {
    let positive = |d: Option<Decimal>| opt(d).filter(|v| *v != 0.0);
    let mut q = Quote::new(pair, t.last_price.0);
    q.bid = positive(t.bid_price);
    q.ask = positive(t.ask_price);
    q.volume_24h = opt(t.volume);
    q.quote_volume_24h = opt(t.quote_volume);
    q.high_24h = opt(t.high_price);
    q.low_24h = opt(t.low_price);
    q.exchange_time = t.close_time.and_then(DateTime::from_timestamp_millis);
    q
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ExchangeKind;
    use crate::exchange::http_source::HttpSource;
    use crate::exchange::http_source::testing::{self, entry, read_ok};
    use crate::source::Fetched;
    use serde_json::json;

    fn source(pairs: Option<&[&str]>) -> HttpSource<Binance> {
        testing::source(&entry(ExchangeKind::Binance, pairs))
    }

    fn parse(s: &HttpSource<Binance>, body: Value) -> Result<Fetched> {
        read_ok(s, body)
    }

    fn mini(symbol: &str, last: &str, count: i64) -> Value {
        json!({"symbol":symbol,"openPrice":"1","highPrice":"3","lowPrice":"0.5","lastPrice":last,
               "volume":"10","quoteVolume":"20","openTime":1499783499040i64,"closeTime":1499869899040i64,
               "firstId":1,"lastId":2,"count":count})
    }

    #[test]
    fn symbols_split_on_known_quote_assets() {
        for (symbol, pair) in [
            ("BTCUSDT", "BTC-USDT"),
            ("BTCFDUSD", "BTC-FDUSD"),
            ("ETHBTC", "ETH-BTC"),
            ("BNBBTC", "BNB-BTC"),
            ("USDCUSDT", "USDC-USDT"),
            ("1INCHUSDT", "1INCH-USDT"),
            ("BTCEUR", "BTC-EUR"),
            ("SHIBDOGE", "SHIB-DOGE"),
        ] {
            assert_eq!(
                split_symbol(symbol).map(|p| p.to_string()).as_deref(),
                Some(pair),
                "{symbol}"
            );
        }
        for bad in ["USDT", "BTCXYZ", "币安人生USDT", ""] {
            assert_eq!(split_symbol(bad), None, "{bad}");
        }
    }

    #[test]
    fn query_lists_symbols_as_a_json_array() {
        let s = source(Some(&["BTC-USDT", "ETH-USDT"]));
        assert_eq!(
            s.exchange().query(),
            vec![("symbols", "[\"BTCUSDT\",\"ETHUSDT\"]".to_owned())]
        );
        assert!(source(None).exchange().query().is_empty());
    }

    #[test]
    fn every_market_skips_idle_and_unmapped_ones_in_one_line_each() {
        let s = source(None);
        let body = json!([
            mini("BTCUSDT", "91000.5", 10),
            mini("ETHBTC", "0.035", 10),
            mini("OLDUSDT", "0.00000000", 0),
            mini("DEADBTC", "0.00000000", 0),
            mini("ABCXYZ", "1", 3),
            mini("BADUSDT", "-1", 3),
        ]);
        let f = parse(&s, body).unwrap();
        let pairs: Vec<_> = f.quotes.iter().map(|q| q.pair.as_str()).collect();
        assert_eq!(pairs, ["BTC-USDT", "ETH-BTC"]);
        assert_eq!(f.problems.len(), 3, "{:?}", f.problems);
        assert!(f.problems[0].starts_with("BAD-USDT: dropped: price -1"));
        assert!(f.problems[1].starts_with("2 markets without a trade"));
        assert!(f.problems[2].contains("1 symbols not mapped") && f.problems[2].contains("ABCXYZ"));
    }

    #[test]
    fn mini_ticker_has_no_bid_or_ask_and_zero_sides_are_none() {
        let s = source(Some(&["BNB-BTC"]));
        let f = parse(&s, mini("BNBBTC", "4.00000200", 76)).unwrap();
        let q = &f.quotes[0];
        assert_eq!((q.price, q.bid, q.ask), (4.000002, None, None));
        assert_eq!((q.volume_24h, q.quote_volume_24h), (Some(10.0), Some(20.0)));
        assert_eq!(q.exchange_time.unwrap().timestamp_millis(), 1499869899040);
        let mut full = mini("BNBBTC", "4", 1);
        full["bidPrice"] = json!("0.00000000");
        full["askPrice"] = json!("4.1");
        let q = parse(&s, json!([full])).unwrap().quotes.remove(0);
        assert_eq!((q.bid, q.ask), (None, Some(4.1)));
    }

    #[test]
    fn error_body_and_missing_symbols() {
        let s = source(Some(&["BTC-USDT", "ETH-USDT"]));
        let e = parse(&s, json!({"code":-1121,"msg":"Invalid symbol."})).unwrap_err();
        assert!(
            e.to_string().contains("Invalid symbol. (code -1121)"),
            "{e}"
        );
        let f = parse(
            &s,
            json!([mini("BTCUSDT", "1", 1), mini("XRPUSDT", "1", 1)]),
        )
        .unwrap();
        assert_eq!(f.quotes.len(), 1);
        assert_eq!(
            f.problems,
            [
                "XRPUSDT: not asked for, ignored",
                "ETH-USDT: missing from the answer"
            ]
        );
    }
}
