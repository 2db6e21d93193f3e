//! Quotes and snapshots (`cryptomon.snapshot/v1`): what a collection stores, verbatim.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::pair::{Pair, SourceName};
use super::tick::Tick;
use crate::error::{Error, Result};

/// The schema tag of a snapshot.
pub const SNAPSHOT_SCHEMA: &str = "cryptomon.snapshot/v1";

/// One market's quote from one source at one collection.
///
/// Only `price` is required; every other field is `None` where the exchange does not give it.
/// None is ever made up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Quote {
    /// Canonical pair.
    pub pair: Pair,
    /// Last trade price, within [`PRICE_RANGE`].
    pub price: f64,
    /// Best bid.
    #[serde(default)]
    pub bid: Option<f64>,
    /// Best ask.
    #[serde(default)]
    pub ask: Option<f64>,
    /// 24-hour volume in the base currency.
    #[serde(default)]
    pub volume_24h: Option<f64>,
    /// 24-hour volume in the quote currency.
    #[serde(default)]
    pub quote_volume_24h: Option<f64>,
    /// 24-hour high.
    #[serde(default)]
    pub high_24h: Option<f64>,
    /// 24-hour low.
    #[serde(default)]
    pub low_24h: Option<f64>,
    /// The exchange's own time for the quote.
    #[serde(default)]
    pub exchange_time: Option<DateTime<Utc>>,
}

impl Quote {
    /// A quote with only the required price.
    pub fn new(pair: Pair, price: f64) -> Self {
        Quote {
            pair,
            price,
            bid: None,
            ask: None,
            volume_24h: None,
            quote_volume_24h: None,
            high_24h: None,
            low_24h: None,
            exchange_time: None,
        }
    }

    /// Checks the quote on its own: the price within [`PRICE_RANGE`], each optional number 0 or
    /// within [`AMOUNT_RANGE`].
    pub fn check(&self) -> std::result::Result<(), String> {
        check_price(self.price)?;
        let optional = [
            ("bid", self.bid),
            ("ask", self.ask),
            ("volume_24h", self.volume_24h),
            ("quote_volume_24h", self.quote_volume_24h),
            ("high_24h", self.high_24h),
            ("low_24h", self.low_24h),
        ];
        for (name, value) in optional {
            if let Some(v) = value {
                check_amount(name, v)?;
            }
        }
        Ok(())
    }
}

/// The prices a quote may have. Every metric of a series whose prices lie in it is a finite
/// `f64` (a change of at most 10^32 %, squares of at most 10^30), and it holds any real market:
/// the cheapest tokens quoted in BTC are near 10^-11, the dearest quotes (BTC in VND) near 10^10.
pub const PRICE_RANGE: std::ops::RangeInclusive<f64> = 1e-15..=1e15;

/// The optional numbers (bid, ask, volumes, high, low) a quote may have besides 0: a 24 h
/// volume of 10^18 units is a thousand times the largest token supply traded, and a mean volume
/// of at least 10^-15 keeps a volume's ratio to its hour's mean finite.
pub const AMOUNT_RANGE: std::ops::RangeInclusive<f64> = 1e-15..=1e18;

/// Checks a price against [`PRICE_RANGE`] (a NaN is outside it).
pub fn check_price(price: f64) -> std::result::Result<(), String> {
    if PRICE_RANGE.contains(&price) {
        return Ok(());
    }
    Err(format!(
        "price {price:e} is outside the accepted range [{:e}, {:e}]",
        PRICE_RANGE.start(),
        PRICE_RANGE.end()
    ))
}

/// Checks the optional number `name`: 0, or within [`AMOUNT_RANGE`].
pub fn check_amount(name: &str, value: f64) -> std::result::Result<(), String> {
    if value == 0.0 || AMOUNT_RANGE.contains(&value) {
        return Ok(());
    }
    Err(format!(
        "{name} {value:e} is neither 0 nor within the accepted range [{:e}, {:e}]",
        AMOUNT_RANGE.start(),
        AMOUNT_RANGE.end()
    ))
}

/// One source's quotes at one tick, plus the exchange's bodies verbatim.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Always [`SNAPSHOT_SCHEMA`].
    pub schema: String,
    /// The source.
    pub source: SourceName,
    /// The schedule slot.
    pub tick: Tick,
    /// When the collection really happened.
    pub collected_at: DateTime<Utc>,
    /// One quote per pair, never the same pair twice.
    pub quotes: Vec<Quote>,
    /// The exchange's response bodies, so a parser bug can be fixed and history re-derived.
    #[serde(default)]
    pub raw: serde_json::Value,
}

impl Snapshot {
    /// A snapshot of [`SNAPSHOT_SCHEMA`].
    pub fn new(
        source: SourceName,
        tick: Tick,
        collected_at: DateTime<Utc>,
        quotes: Vec<Quote>,
        raw: serde_json::Value,
    ) -> Self {
        Snapshot {
            schema: SNAPSHOT_SCHEMA.to_owned(),
            source,
            tick,
            collected_at,
            quotes,
            raw,
        }
    }

    /// Refuses a snapshot that breaks the contract: another schema, no quote, a bad price or the
    /// same pair twice. The error names the pair at fault.
    pub fn validate(&self) -> Result<()> {
        let invalid = |pair: Option<&Pair>, reason: String| Error::InvalidSnapshot {
            source_name: self.source.to_string(),
            pair: pair.map(Pair::to_string),
            reason,
        };
        if self.schema != SNAPSHOT_SCHEMA {
            return Err(invalid(
                None,
                format!("schema {:?}, expected {SNAPSHOT_SCHEMA:?}", self.schema),
            ));
        }
        if self.quotes.is_empty() {
            return Err(invalid(None, "no quote".to_owned()));
        }
        let mut seen = HashSet::with_capacity(self.quotes.len());
        for q in &self.quotes {
            q.check().map_err(|r| invalid(Some(&q.pair), r))?;
            if !seen.insert(&q.pair) {
                return Err(invalid(Some(&q.pair), "pair appears twice".to_owned()));
            }
        }
        Ok(())
    }

    /// The snapshot as the JSON bytes stored under its raw key.
    pub fn to_json(&self) -> Vec<u8> {
        // Serializing plain data with string keys cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(quotes: Vec<Quote>) -> Snapshot {
        Snapshot::new(
            SourceName::new("coinbase").unwrap(),
            Tick::parse("2026-11-27T23:48:00Z").unwrap(),
            "2026-11-27T23:48:00.412Z".parse().unwrap(),
            quotes,
            serde_json::json!({}),
        )
    }

    fn q(pair: &str, price: f64) -> Quote {
        Quote::new(Pair::new(pair).unwrap(), price)
    }

    #[test]
    fn valid_snapshot_round_trips_in_contract_form() {
        let s = snap(vec![q("BTC-USD", 91234.5)]);
        s.validate().unwrap();
        let json: serde_json::Value = serde_json::from_slice(&s.to_json()).unwrap();
        assert_eq!(json["schema"], "cryptomon.snapshot/v1");
        assert_eq!(json["tick"], "2026-11-27T23:48:00Z");
        assert_eq!(json["collected_at"], "2026-11-27T23:48:00.412Z");
        assert!(json["quotes"][0]["bid"].is_null());
        let back: Snapshot = serde_json::from_value(json).unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn bad_prices_are_refused_with_the_pair() {
        // 1e-320 and 1e300 are finite and positive, but a series holding one has infinite
        // metrics (issue 20): the range keeps every metric finite.
        for price in [
            0.0,
            -1.0,
            f64::NAN,
            f64::INFINITY,
            1e-320,
            1e-16,
            1e300,
            1.1e15,
        ] {
            let err = snap(vec![q("BTC-USD", 1.0), q("ETH-USD", price)])
                .validate()
                .unwrap_err()
                .to_string();
            assert!(err.contains("ETH-USD") && err.contains("coinbase"), "{err}");
            assert!(err.contains("outside the accepted range"), "{err}");
        }
        for price in [*PRICE_RANGE.start(), 3.2e-11, 91_234.5, *PRICE_RANGE.end()] {
            snap(vec![q("ETH-USD", price)]).validate().unwrap();
        }
    }

    #[test]
    fn optional_numbers_are_zero_or_within_their_range() {
        for (volume, ok) in [
            (0.0, true),
            (1e-15, true),
            (1e18, true),
            (1e-320, false),
            (1e19, false),
            (-0.5, false),
        ] {
            let mut quote = q("BTC-USD", 1.0);
            quote.volume_24h = Some(volume);
            assert_eq!(snap(vec![quote]).validate().is_ok(), ok, "{volume:e}");
        }
    }

    #[test]
    fn duplicate_pairs_and_empty_snapshots_are_refused() {
        let err = snap(vec![q("BTC-USD", 1.0), q("BTC-USD", 2.0)])
            .validate()
            .unwrap_err();
        assert!(err.to_string().contains("twice"), "{err}");
        assert!(snap(vec![]).validate().is_err());
    }

    #[test]
    fn negative_volume_is_refused() {
        let mut quote = q("BTC-USD", 1.0);
        quote.volume_24h = Some(-3.0);
        assert!(snap(vec![quote]).validate().is_err());
    }

    #[test]
    fn malformed_pair_fails_to_decode() {
        let json = r#"{"schema":"cryptomon.snapshot/v1","source":"x","tick":"2026-11-27T23:48:00Z",
            "collected_at":"2026-11-27T23:48:00Z","quotes":[{"pair":"btc","price":1}]}"#;
        assert!(serde_json::from_str::<Snapshot>(json).is_err());
    }
}
