//! Backfill objects (`cryptomon.backfill/v1`): one source's one-minute closes of one UTC hour,
//! read from the exchange's candles, for the minutes no snapshot was collected.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::pair::{Pair, SourceName};
use super::snapshot::{check_amount, check_price};
use super::tick::{MINUTE, Tick};
use crate::error::{Error, Result};

/// The schema tag of a backfill object.
pub const BACKFILL_SCHEMA: &str = "cryptomon.backfill/v1";

/// Seconds in an hour: a backfill object's span.
pub const HOUR: i64 = 3600;

/// One source's backfilled minutes of one UTC hour.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Backfill {
    /// Always [`BACKFILL_SCHEMA`].
    pub schema: String,
    /// The source, as its snapshots name it.
    pub source: SourceName,
    /// The hour's first second (a multiple of 3,600 s).
    pub hour: Tick,
    /// When the candles were fetched.
    pub fetched_at: DateTime<Utc>,
    /// One series per pair with at least one sample, never the same pair twice.
    pub series: Vec<BackfillSeries>,
    /// What could not be filled in the hour, one line per pair.
    #[serde(default)]
    pub missing: Vec<Missing>,
}

/// The samples of one pair in the hour.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackfillSeries {
    /// Canonical pair.
    pub pair: Pair,
    /// Oldest first, each minute of the hour at most once.
    pub samples: Vec<BackfillSample>,
}

/// One minute: `[tick, price, volume_24h]` in JSON.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(from = "(i64, f64, Option<f64>)", into = "(i64, f64, Option<f64>)")]
pub struct BackfillSample {
    /// The minute the candle opens.
    pub tick: Tick,
    /// The candle's close.
    pub price: f64,
    /// The base-asset volume of the 1,440 minutes ending with this one, if every one of them
    /// had a candle with a volume; `null` otherwise, never a partial sum.
    pub volume_24h: Option<f64>,
}

impl From<(i64, f64, Option<f64>)> for BackfillSample {
    fn from((tick, price, volume_24h): (i64, f64, Option<f64>)) -> Self {
        BackfillSample {
            tick: Tick::from_unix(tick),
            price,
            volume_24h,
        }
    }
}

impl From<BackfillSample> for (i64, f64, Option<f64>) {
    fn from(s: BackfillSample) -> Self {
        (s.tick.unix(), s.price, s.volume_24h)
    }
}

/// A pair the hour lacks minutes of, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Missing {
    /// Canonical pair.
    pub pair: Pair,
    /// Why, in a line (`exchange returned no candle for 13:05-13:09`).
    pub reason: String,
}

impl Backfill {
    /// A backfill object of [`BACKFILL_SCHEMA`].
    pub fn new(
        source: SourceName,
        hour: Tick,
        fetched_at: DateTime<Utc>,
        series: Vec<BackfillSeries>,
        missing: Vec<Missing>,
    ) -> Self {
        Backfill {
            schema: BACKFILL_SCHEMA.to_owned(),
            source,
            hour,
            fetched_at,
            series,
            missing,
        }
    }

    /// Refuses an object that breaks the contract: another schema, an hour not on the hour, no
    /// sample, a pair twice, a sample outside the hour, off the minute or out of order, a price
    /// outside [`PRICE_RANGE`](super::PRICE_RANGE) or a volume neither 0 nor within
    /// [`AMOUNT_RANGE`](super::AMOUNT_RANGE). The error names the pair at fault.
    pub fn validate(&self) -> Result<()> {
        let invalid = |pair: Option<&Pair>, reason: String| Error::InvalidBackfill {
            source_name: self.source.to_string(),
            hour: self.hour,
            pair: pair.map(Pair::to_string),
            reason,
        };
        if self.schema != BACKFILL_SCHEMA {
            return Err(invalid(
                None,
                format!("schema {:?}, expected {BACKFILL_SCHEMA:?}", self.schema),
            ));
        }
        if self.hour.unix().rem_euclid(HOUR) != 0 {
            return Err(invalid(None, "hour is not on a whole hour".to_owned()));
        }
        if self.series.iter().all(|s| s.samples.is_empty()) {
            return Err(invalid(None, "no sample".to_owned()));
        }
        let end = self.hour.add_secs(HOUR);
        let mut seen = HashSet::with_capacity(self.series.len());
        for series in &self.series {
            let pair = &series.pair;
            if !seen.insert(pair) {
                return Err(invalid(Some(pair), "pair appears twice".to_owned()));
            }
            let mut previous: Option<Tick> = None;
            for s in &series.samples {
                let at = |why: String| invalid(Some(pair), format!("sample at {}: {why}", s.tick));
                if s.tick < self.hour || s.tick >= end {
                    return Err(at("outside the hour".to_owned()));
                }
                if s.tick.unix().rem_euclid(MINUTE) != 0 {
                    return Err(at("not on a whole minute".to_owned()));
                }
                if previous.is_some_and(|p| p >= s.tick) {
                    return Err(at("not after the sample before it".to_owned()));
                }
                previous = Some(s.tick);
                check_price(s.price).map_err(at)?;
                if let Some(v) = s.volume_24h {
                    check_amount("volume_24h", v).map_err(at)?;
                }
            }
        }
        Ok(())
    }

    /// The object as the JSON bytes stored under its backfill key.
    pub fn to_json(&self) -> Vec<u8> {
        // Serializing plain data with string keys cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Reads and validates a stored object; `key` names it in the error.
    pub fn from_json(key: &str, body: &[u8]) -> Result<Self> {
        let backfill: Backfill = serde_json::from_slice(body).map_err(|e| Error::Decode {
            key: key.to_owned(),
            reason: e.to_string(),
        })?;
        backfill.validate()?;
        Ok(backfill)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR_START: i64 = 1_796_000_400;

    fn sample(offset_min: i64, price: f64, volume: Option<f64>) -> BackfillSample {
        BackfillSample {
            tick: Tick::from_unix(HOUR_START + offset_min * 60),
            price,
            volume_24h: volume,
        }
    }

    fn object(samples: Vec<BackfillSample>) -> Backfill {
        Backfill::new(
            SourceName::new("coinbase").unwrap(),
            Tick::from_unix(HOUR_START),
            "2026-12-07T16:02:11Z".parse().unwrap(),
            vec![BackfillSeries {
                pair: Pair::new("BTC-USD").unwrap(),
                samples,
            }],
            vec![Missing {
                pair: Pair::new("ETH-USD").unwrap(),
                reason: "exchange returned no candle for 13:05-13:09".to_owned(),
            }],
        )
    }

    #[test]
    fn round_trips_in_the_contract_form() {
        let b = object(vec![
            sample(0, 97000.5, Some(1234.5)),
            sample(1, 97001.0, None),
        ]);
        b.validate().unwrap();
        let json: serde_json::Value = serde_json::from_slice(&b.to_json()).unwrap();
        assert_eq!(json["schema"], "cryptomon.backfill/v1");
        assert_eq!(json["hour"], "2026-11-30T01:00:00Z");
        assert_eq!(
            json["series"][0]["samples"],
            serde_json::json!([
                [HOUR_START, 97000.5, 1234.5],
                [HOUR_START + 60, 97001.0, null]
            ])
        );
        assert_eq!(json["missing"][0]["pair"], "ETH-USD");
        assert_eq!(Backfill::from_json("k", &b.to_json()).unwrap(), b);
    }

    /// The example of `docs/data-contract.md`, read from the page itself.
    #[test]
    fn the_documented_example_is_valid() {
        let page = include_str!("../../../docs/data-contract.md");
        let doc = page
            .split("```json\n")
            .skip(1)
            .filter_map(|block| block.split("```").next())
            .find(|block| block.contains("cryptomon.backfill/v1"))
            .expect("data-contract.md shows a backfill object");
        let b = Backfill::from_json("doc", doc.as_bytes()).unwrap();
        assert_eq!(b.series[0].samples[1].volume_24h, None);
        assert_eq!(b.hour, Tick::parse("2026-12-07T13:00:00Z").unwrap());
    }

    #[test]
    fn breaking_objects_are_refused_naming_the_pair() {
        for (samples, wanted) in [
            (vec![sample(60, 1.0, None)], "outside the hour"),
            (vec![sample(-1, 1.0, None)], "outside the hour"),
            (
                vec![sample(2, 1.0, None), sample(1, 1.0, None)],
                "not after",
            ),
            (
                vec![sample(1, 1.0, None), sample(1, 1.0, None)],
                "not after",
            ),
            (vec![sample(1, 0.0, None)], "outside the accepted range"),
            (vec![sample(1, 1.0, Some(-2.0))], "volume_24h"),
            (
                vec![sample(1, f64::NAN, None)],
                "outside the accepted range",
            ),
        ] {
            let e = object(samples).validate().unwrap_err().to_string();
            assert!(e.contains("BTC-USD") && e.contains("coinbase"), "{e}");
            assert!(e.contains(wanted), "{wanted}: {e}");
        }
        let mut off = object(vec![sample(1, 1.0, None)]);
        off.series[0].samples[0].tick = Tick::from_unix(HOUR_START + 61);
        assert!(
            off.validate()
                .unwrap_err()
                .to_string()
                .contains("whole minute")
        );
        let mut b = object(vec![sample(1, 1.0, None)]);
        b.hour = b.hour.add_secs(60);
        assert!(b.validate().unwrap_err().to_string().contains("whole hour"));
        assert!(
            object(vec![])
                .validate()
                .unwrap_err()
                .to_string()
                .contains("no sample")
        );
        let mut twice = object(vec![sample(1, 1.0, None)]);
        twice.series.push(twice.series[0].clone());
        assert!(twice.validate().unwrap_err().to_string().contains("twice"));
    }
}
