//! Decoding stored snapshots for the transform: only what the metrics use, checked as strictly
//! as the contract asks, without building a full [`Snapshot`] per object.

use std::borrow::Cow;
use std::collections::HashSet;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde::de::IgnoredAny;

use crate::engine::WindowBuilder;
use crate::error::Result;
use crate::model::{Pair, SNAPSHOT_SCHEMA, SourceName, Tick};

/// A snapshot reduced to its samples.
#[derive(Debug)]
pub(crate) struct Samples {
    source: SourceName,
    tick: Tick,
    collected_at_ms: i64,
    quotes: Vec<(Box<str>, f64, Option<f64>)>,
}

impl Samples {
    /// The number of samples (one per quote).
    pub(crate) fn len(&self) -> usize {
        self.quotes.len()
    }

    pub(crate) fn push_into(&self, builder: &mut WindowBuilder) -> Result<()> {
        for (pair, price, volume) in &self.quotes {
            builder.push_str(
                &self.source,
                pair,
                self.tick,
                self.collected_at_ms,
                *price,
                *volume,
            )?;
        }
        Ok(())
    }
}

#[derive(Deserialize)]
struct Lean<'a> {
    #[serde(borrow)]
    schema: Cow<'a, str>,
    source: SourceName,
    tick: Tick,
    collected_at: DateTime<Utc>,
    #[serde(borrow)]
    quotes: Vec<LeanQuote<'a>>,
}

#[derive(Deserialize)]
struct LeanQuote<'a> {
    #[serde(borrow)]
    pair: Cow<'a, str>,
    price: f64,
    #[serde(default)]
    volume_24h: Option<f64>,
    #[serde(default)]
    bid: Option<f64>,
    #[serde(default)]
    ask: Option<f64>,
    #[serde(default)]
    quote_volume_24h: Option<f64>,
    #[serde(default)]
    high_24h: Option<f64>,
    #[serde(default)]
    low_24h: Option<f64>,
    #[serde(default, rename = "exchange_time")]
    _exchange_time: Option<IgnoredAny>,
}

/// Decodes a stored object into its samples, refusing what breaks the contract (another schema,
/// no quote, a malformed pair, a price ≤ 0, a negative optional number, a pair twice). JSON has
/// no NaN or infinity, so every number that parses is finite. The error says what is wrong.
pub(crate) fn decode_samples(body: &[u8]) -> std::result::Result<Samples, String> {
    // serde_json skips ignored strings (`raw`, `exchange_time`) without checking their UTF-8, so
    // a corrupt body could pass as a snapshot that no JSON reader downstream (Athena, DuckDB)
    // accepts. So the whole body is checked first.
    let text = std::str::from_utf8(body)
        .map_err(|e| format!("not valid JSON: invalid UTF-8 at byte {}", e.valid_up_to()))?;
    // Nor does it check the `\u` escapes of skipped strings: a lone surrogate would pass here
    // and fail every reader that decodes the whole snapshot.
    if let Some(at) = unpaired_surrogate(text.as_bytes()) {
        return Err(format!(
            "not valid JSON: a \\u escape at byte {at} is an unpaired surrogate"
        ));
    }
    // Nor the range of skipped numbers: `1e999` in an ignored field would pass here and fail
    // every reader that decodes the whole snapshot ("number out of range").
    if let Some(at) = out_of_range_number(text.as_bytes()) {
        return Err(format!(
            "not valid JSON: the number at byte {at} is out of range"
        ));
    }
    let lean: Lean<'_> = match serde_json::from_str(text) {
        Ok(l) => l,
        Err(e) => return Err(explain(body, &e)),
    };
    if lean.schema != SNAPSHOT_SCHEMA {
        return Err(format!("not a snapshot (schema {:?})", lean.schema));
    }
    if lean.quotes.is_empty() {
        return Err("no quote".into());
    }
    let mut seen = HashSet::with_capacity(lean.quotes.len());
    let mut quotes = Vec::with_capacity(lean.quotes.len());
    for q in lean.quotes {
        let pair = q.pair;
        Pair::check(&pair).map_err(|r| format!("invalid pair {pair:?}: {r}"))?;
        if q.price <= 0.0 {
            return Err(format!("{pair}: price {} is not positive", q.price));
        }
        let optional = [
            q.volume_24h,
            q.bid,
            q.ask,
            q.quote_volume_24h,
            q.high_24h,
            q.low_24h,
        ];
        if optional.into_iter().flatten().any(|v| v < 0.0) {
            return Err(format!("{pair}: a negative volume, bid, ask, high or low"));
        }
        if !seen.insert(pair.clone()) {
            return Err(format!("{pair}: pair appears twice"));
        }
        quotes.push((Box::from(pair.as_ref()), q.price, q.volume_24h));
    }
    Ok(Samples {
        source: lean.source,
        tick: lean.tick,
        collected_at_ms: lean.collected_at.timestamp_millis(),
        quotes,
    })
}

/// The offset of the first `\u` escape that is an unpaired UTF-16 surrogate, as serde_json
/// refuses when it decodes a string: a low surrogate alone, or a high one not followed by an
/// escaped low one. Backslashes only occur inside strings in JSON, so a scan from one to the next
/// sees every escape; a body without a backslash costs one pass over its bytes.
fn unpaired_surrogate(bytes: &[u8]) -> Option<usize> {
    // Exactly four hex digits: `from_str_radix` alone would also take a sign (`+abc`).
    let hex = |at: usize| -> Option<u16> {
        let digits = bytes.get(at..at + 4)?;
        if !digits.iter().all(u8::is_ascii_hexdigit) {
            return None;
        }
        u16::from_str_radix(std::str::from_utf8(digits).ok()?, 16).ok()
    };
    let mut i = 0;
    while let Some(offset) = bytes[i..].iter().position(|&b| b == b'\\') {
        let at = i + offset;
        match bytes.get(at + 1) {
            Some(b'u') => {
                // A malformed escape is serde_json's to report.
                let unit = hex(at + 2)?;
                i = at + 6;
                match unit {
                    0xDC00..=0xDFFF => return Some(at),
                    0xD800..=0xDBFF => {
                        let low = (bytes.get(i..i + 2) == Some(b"\\u".as_slice()))
                            .then(|| hex(i + 2))
                            .flatten();
                        if !matches!(low, Some(0xDC00..=0xDFFF)) {
                            return Some(at);
                        }
                        i += 6;
                    }
                    _ => {}
                }
            }
            // Any other escape is two bytes (`\\`, `\"`, `\n`, ...).
            Some(_) => i = at + 2,
            None => return None,
        }
    }
    None
}

/// The offset of the first number, outside strings, too large for an `f64` (serde_json refuses
/// it when it decodes the value; it skips it unchecked in an ignored field). Only numbers with an
/// exponent or over 300 digits can be: the others are not parsed again.
fn out_of_range_number(bytes: &[u8]) -> Option<usize> {
    let (mut i, mut in_string) = (0, false);
    while i < bytes.len() {
        let b = bytes[i];
        if in_string {
            match b {
                b'\\' => i += 1,
                b'"' => in_string = false,
                _ => {}
            }
            i += 1;
            continue;
        }
        if b == b'"' {
            in_string = true;
            i += 1;
            continue;
        }
        if b == b'-' || b.is_ascii_digit() {
            let start = i;
            while i < bytes.len()
                && matches!(bytes[i], b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')
            {
                i += 1;
            }
            let number = &bytes[start..i];
            let suspect = number.len() > 300 || number.iter().any(|&c| c == b'e' || c == b'E');
            if suspect
                && std::str::from_utf8(number)
                    .ok()
                    .and_then(|n| n.parse::<f64>().ok())
                    .is_some_and(|v| v.is_infinite())
            {
                return Some(start);
            }
            continue;
        }
        i += 1;
    }
    None
}

/// A foreign JSON document is more useful reported by its schema than by serde's path.
fn explain(body: &[u8], e: &serde_json::Error) -> String {
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(v) => match v.get("schema").and_then(|s| s.as_str()) {
            Some(schema) if schema != SNAPSHOT_SCHEMA => {
                format!("not a snapshot (schema {schema:?})")
            }
            _ => format!("malformed snapshot: {e}"),
        },
        Err(_) => format!("not valid JSON: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(quotes: &str) -> String {
        format!(
            r#"{{"schema":"cryptomon.snapshot/v1","source":"kraken","tick":"2026-11-27T12:00:00Z",
            "collected_at":"2026-11-27T12:00:01.5Z","quotes":[{quotes}],"raw":{{"big":[1,2,3]}}}}"#
        )
    }

    /// Found by the `snapshot` fuzz target: a byte that is not UTF-8 inside `raw` was accepted,
    /// because serde_json does not check the strings it skips.
    #[test]
    fn fuzz_snapshot_invalid_utf8_in_skipped_field_is_refused() {
        let mut bad = body(r#"{"pair":"BTC-USD","price":1.0}"#).into_bytes();
        let at = bad.windows(3).position(|w| w == b"big").unwrap();
        bad[at + 1] = 0xff;
        let err = decode_samples(&bad).unwrap_err();
        assert!(err.contains("invalid UTF-8"), "{err}");
        assert!(err.contains(&format!("byte {}", at + 1)), "{err}");
    }

    /// Found by the `snapshot` fuzz target: `"\ud94e"` in a skipped field was accepted, while
    /// serde_json refuses it in any string it decodes.
    #[test]
    fn fuzz_snapshot_lone_surrogate_escape_is_refused() {
        for (extra, bad) in [
            (r#""note":"\ud94e""#, true),
            (r#""note":"\udc00x""#, true),
            (r#""note":"\ud83d\u0041""#, true),
            (r#""note":"\ud83d""#, true),
            (r#""note":"\ud83d\ude00""#, false),
            (r#""note":"\\ud94e""#, false),
            (r#""note":"\u00e9\n\"""#, false),
        ] {
            let text = body(r#"{"pair":"BTC-USD","price":1.0}"#).replace(r#""big":[1,2,3]"#, extra);
            assert!(text.contains(extra), "{text}");
            let got = decode_samples(text.as_bytes());
            let strict = serde_json::from_str::<serde_json::Value>(&text).is_ok();
            assert_eq!(got.is_err(), bad, "{extra}: {got:?}");
            assert_eq!(strict, !bad, "{extra}: serde_json disagrees");
            if bad {
                assert!(got.unwrap_err().contains("unpaired surrogate"), "{extra}");
            }
        }
    }

    #[test]
    fn fuzz_snapshot_out_of_range_number_in_skipped_field_is_refused() {
        for (extra, bad) in [
            (r#""note":2.716222e6669439"#, true),
            (r#""note":-1E400"#, true),
            (r#""note":[1,1e309]"#, true),
            (r#""note":1e308"#, false),
            (r#""note":1e-999"#, false),
            (r#""note":"1e999""#, false),
            (r#""note":"\"1e999""#, false),
        ] {
            let text = body(r#"{"pair":"BTC-USD","price":1.0}"#).replace(r#""big":[1,2,3]"#, extra);
            assert!(text.contains(extra), "{text}");
            let got = decode_samples(text.as_bytes());
            let strict = serde_json::from_str::<serde_json::Value>(&text).is_ok();
            assert_eq!(got.is_err(), bad, "{extra}: {got:?}");
            assert_eq!(strict, !bad, "{extra}: serde_json disagrees");
            if bad {
                assert!(got.unwrap_err().contains("out of range"), "{extra}");
            }
        }
    }

    #[test]
    fn keeps_pair_price_and_volume() {
        let s = decode_samples(
            body(
                r#"{"pair":"BTC-USD","price":1.5,"volume_24h":null,"bid":1.4,"exchange_time":"x"}"#,
            )
            .as_bytes(),
        )
        .unwrap();
        assert_eq!(s.quotes.len(), 1);
        assert_eq!((s.quotes[0].1, s.quotes[0].2), (1.5, None));
        assert_eq!(s.collected_at_ms % 1000, 500);
    }

    #[test]
    fn refuses_what_the_contract_refuses() {
        let cases = [
            (body(""), "no quote"),
            (body(r#"{"pair":"btc-usd","price":1}"#), "invalid pair"),
            (body(r#"{"pair":"BTC-USD","price":0}"#), "not positive"),
            (body(r#"{"pair":"BTC-USD","price":1,"bid":-1}"#), "negative"),
            (
                body(r#"{"pair":"BTC-USD","price":1},{"pair":"BTC-USD","price":2}"#),
                "twice",
            ),
            (
                body(r#"{"pair":"BTC-USD","price":"1"}"#),
                "malformed snapshot",
            ),
            (
                r#"{"schema":"something/else"}"#.to_owned(),
                "not a snapshot",
            ),
            ("{\"schema\": \"cryptomon".to_owned(), "not valid JSON"),
        ];
        for (input, want) in cases {
            let err = decode_samples(input.as_bytes()).unwrap_err();
            assert!(err.contains(want), "{input}: {err}");
        }
    }
}
