//! Decoding stored snapshots for the transform: only what the metrics use, checked as strictly
//! as the contract asks, without building a full [`Snapshot`] per object.

use std::borrow::Cow;
use std::collections::HashSet;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::value::RawValue;

use crate::engine::WindowBuilder;
use crate::error::Result;
use crate::model::{Pair, SNAPSHOT_SCHEMA, SourceName, Tick, check_amount, check_price};

mod scan;

/// A snapshot reduced to its samples.
#[derive(Debug)]
pub(crate) struct Samples {
    source: SourceName,
    tick: Tick,
    collected_at_ms: i64,
    /// Every pair's text, one after the other: one allocation a snapshot, not one a quote.
    pairs: String,
    /// Per quote: where its pair ends in `pairs`, its price and its volume.
    quotes: Vec<(u32, f64, Option<f64>)>,
}

impl Samples {
    /// The number of samples (one per quote).
    pub(crate) fn len(&self) -> usize {
        self.quotes.len()
    }

    /// The samples as (pair, price, volume).
    fn iter(&self) -> impl Iterator<Item = (&str, f64, Option<f64>)> {
        let mut start = 0;
        self.quotes.iter().map(move |&(end, price, volume)| {
            let pair = &self.pairs[start..end as usize];
            start = end as usize;
            (pair, price, volume)
        })
    }

    pub(crate) fn push_into(&self, builder: &mut WindowBuilder) -> Result<()> {
        builder.push_samples(&self.source, self.tick, self.collected_at_ms, self.iter())
    }
}

#[derive(Deserialize)]
struct SnapshotView<'a> {
    #[serde(borrow)]
    schema: Cow<'a, str>,
    source: SourceName,
    tick: Tick,
    collected_at: DateTime<Utc>,
    #[serde(borrow)]
    quotes: Vec<QuoteView<'a>>,
}

/// A quote as the metrics use it. The numbers the metrics do not use are only checked (see
/// [`check_unused`]), not converted: parsing them was a tenth of a full transform's time.
#[derive(Deserialize)]
struct QuoteView<'a> {
    #[serde(borrow)]
    pair: Cow<'a, str>,
    price: f64,
    #[serde(default)]
    volume_24h: Option<f64>,
    #[serde(default, borrow, deserialize_with = "raw_text")]
    bid: Option<&'a str>,
    #[serde(default, borrow, deserialize_with = "raw_text")]
    ask: Option<&'a str>,
    #[serde(default, borrow, deserialize_with = "raw_text")]
    quote_volume_24h: Option<&'a str>,
    #[serde(default, borrow, deserialize_with = "raw_text")]
    high_24h: Option<&'a str>,
    #[serde(default, borrow, deserialize_with = "raw_text")]
    low_24h: Option<&'a str>,
    #[serde(default, rename = "exchange_time")]
    _exchange_time: Option<IgnoredAny>,
}

/// A value's JSON text, unparsed (`None` for `null`).
fn raw_text<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<&'de str>, D::Error> {
    Option::<&'de RawValue>::deserialize(d).map(|raw| raw.map(RawValue::get))
}

impl QuoteView<'_> {
    /// The unused numbers as a snapshot must have them: a number or `null`, never negative.
    fn check_unused(&self) -> std::result::Result<(), String> {
        let fields = [
            ("bid", self.bid),
            ("ask", self.ask),
            ("quote_volume_24h", self.quote_volume_24h),
            ("high_24h", self.high_24h),
            ("low_24h", self.low_24h),
        ];
        for (name, raw) in fields {
            // The decoder has checked the JSON, and gives `null` as `None`.
            let Some(raw) = raw else {
                continue;
            };
            match raw.as_bytes().first() {
                Some(b'0'..=b'9') => {}
                // Only a number with a sign can be negative: it alone is parsed (`-0` and
                // `-1e-400` are zero, not negative). Its range is checked with every other
                // number's (`out_of_range_number`).
                Some(b'-') => {
                    if raw.parse::<f64>().is_ok_and(|v| v < 0.0) {
                        return Err(format!("{}: a negative {name}", self.pair));
                    }
                }
                _ => {
                    return Err(format!(
                        "malformed snapshot: {name} of {} is {raw:.40}, not a number",
                        self.pair
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Decodes a stored object into its samples, refusing what breaks the contract (another schema,
/// no quote, a malformed pair, a price or volume outside the accepted range (`PRICE_RANGE`,
/// `AMOUNT_RANGE`), a negative optional number, a pair twice). JSON has
/// no NaN or infinity, so every number that parses is finite. The error says what is wrong.
pub(crate) fn decode_samples(body: &[u8]) -> std::result::Result<Samples, String> {
    // serde_json skips ignored strings (`raw`, `exchange_time`) without checking their UTF-8, so
    // a corrupt body could pass as a snapshot that no JSON reader downstream (Athena, DuckDB)
    // accepts. So the whole body is checked first (the scanner relies on it too).
    let text = std::str::from_utf8(body)
        .map_err(|e| format!("not valid JSON: invalid UTF-8 at byte {}", e.valid_up_to()))?;
    // The scanner takes what the collector writes; serde_json the rest, and says what is wrong.
    match scan::scan(text) {
        Some(samples) => Ok(samples),
        None => decode_slowly(body, text),
    }
}

/// [`decode_samples`] by serde_json: the reference the scanner is tested against, and what
/// explains a refusal.
fn decode_slowly(body: &[u8], text: &str) -> std::result::Result<Samples, String> {
    let lean = decode_strictly(body, text)?;
    if lean.schema != SNAPSHOT_SCHEMA {
        return Err(format!("not a snapshot (schema {:?})", lean.schema));
    }
    let mut taken = SamplesBuilder::with_capacity(lean.quotes.len());
    for q in &lean.quotes {
        taken.take(&q.pair, q)?;
    }
    taken.samples(lean.source, lean.tick, lean.collected_at)
}

/// A snapshot's samples as its quotes are taken in, each checked as it comes.
struct SamplesBuilder<'q> {
    /// The pairs so far, to refuse one seen twice.
    seen: HashSet<&'q str, FastHash>,
    pairs: String,
    quotes: Vec<(u32, f64, Option<f64>)>,
}

impl<'q> SamplesBuilder<'q> {
    /// Room for `quotes` quotes.
    fn with_capacity(quotes: usize) -> Self {
        SamplesBuilder {
            seen: HashSet::with_capacity_and_hasher(quotes, FastHash::default()),
            pairs: String::with_capacity(quotes * 8),
            quotes: Vec::with_capacity(quotes),
        }
    }

    /// Checks quote `q` (of pair `pair`) as the contract asks and keeps its sample.
    fn take(&mut self, pair: &'q str, q: &QuoteView<'_>) -> std::result::Result<(), String> {
        Pair::check(pair).map_err(|r| format!("invalid pair {pair:?}: {r}"))?;
        check_price(q.price).map_err(|r| format!("{pair}: {r}"))?;
        if let Some(volume) = q.volume_24h {
            check_amount("volume_24h", volume).map_err(|r| format!("{pair}: {r}"))?;
        }
        q.check_unused()?;
        if !self.seen.insert(pair) {
            return Err(format!("{pair}: pair appears twice"));
        }
        self.pairs.push_str(pair);
        let end =
            u32::try_from(self.pairs.len()).map_err(|_| "pairs longer than 4 GB".to_owned())?;
        self.quotes.push((end, q.price, q.volume_24h));
        Ok(())
    }

    /// The samples, if there was a quote.
    fn samples(
        mut self,
        source: SourceName,
        tick: Tick,
        collected_at: DateTime<Utc>,
    ) -> std::result::Result<Samples, String> {
        if self.quotes.is_empty() {
            return Err("no quote".into());
        }
        // The scanner's room was a guess from the text's length, and a snapshot whose `raw`
        // holds an exchange's whole response is mostly not quotes: what a snapshot keeps until
        // the window takes it in is what it holds, not the guess.
        if self.quotes.capacity() > 2 * self.quotes.len() {
            self.quotes.shrink_to_fit();
            self.pairs.shrink_to_fit();
        }
        Ok(Samples {
            source,
            tick,
            collected_at_ms: collected_at.timestamp_millis(),
            pairs: self.pairs,
            quotes: self.quotes,
        })
    }
}

/// `text` decoded by serde_json, with the checks it does not make in the values it skips.
fn decode_strictly<'a>(
    body: &[u8],
    text: &'a str,
) -> std::result::Result<SnapshotView<'a>, String> {
    // serde_json does not check the `\u` escapes of skipped strings: a lone surrogate would pass
    // here and fail every reader that decodes the whole snapshot.
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
    serde_json::from_str(text).map_err(|e| explain(body, &e))
}

/// A quick hasher for the pairs of one snapshot: this set is built per object on the hot path,
/// and needs no defence against crafted collisions (a snapshot holds a few thousand pairs).
type FastHash = foldhash::fast::FixedState;

/// The four hex digits of a `\u` escape at `at`, as a UTF-16 code unit. Exactly four:
/// `from_str_radix` alone would also take a sign (`+abc`).
fn hex4(bytes: &[u8], at: usize) -> Option<u16> {
    let digits = bytes.get(at..at + 4)?;
    if !digits.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    u16::from_str_radix(std::str::from_utf8(digits).ok()?, 16).ok()
}

/// Whether a JSON number's text (`has_exponent` if it has an `e` or `E`) is too large for an
/// `f64`, which serde_json refuses where it decodes the number. Only a number with an exponent
/// or over 300 digits can be: the others are not parsed.
fn out_of_range(number: &[u8], has_exponent: bool) -> bool {
    (has_exponent || number.len() > 300)
        && std::str::from_utf8(number)
            .ok()
            .and_then(|n| n.parse::<f64>().ok())
            .is_some_and(f64::is_infinite)
}

/// The offset of the first `\u` escape that is an unpaired UTF-16 surrogate, as serde_json
/// refuses when it decodes a string: a low surrogate alone, or a high one not followed by an
/// escaped low one. Backslashes only occur inside strings in JSON, so a scan from one to the next
/// sees every escape; a body without a backslash costs one pass over its bytes.
fn unpaired_surrogate(bytes: &[u8]) -> Option<usize> {
    let hex = |at: usize| hex4(bytes, at);
    let mut i = 0;
    while let Some(offset) = memchr::memchr(b'\\', &bytes[i..]) {
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
/// it when it decodes the value; it skips it unchecked in an ignored field).
///
/// The exact scan walks every byte, tracking strings, which took a fifth of a full transform's
/// time; so a quick test that cannot miss such a number comes first, and the exact scan runs
/// only on a body that fails it (one with an exponent or a very long run of digits).
fn out_of_range_number(bytes: &[u8]) -> Option<usize> {
    if may_hold_out_of_range_number(bytes) {
        out_of_range_number_exact(bytes)
    } else {
        None
    }
}

/// Whether `bytes` may hold a number out of `f64` range; `false` means surely not.
///
/// Such a number parses to infinity, so it has either an exponent (an `e` or `E` after a digit
/// or a `.`) or at least 309 integer digits. Every run of 256 or more bytes holds a byte at a
/// multiple of 256, so only those bytes are looked at for the second. For the first, the run of
/// number bytes around each such `e` is parsed: a body whose exponents all give finite numbers
/// (or that has none, as the exchanges' quotes) passes without the exact scan. The run is taken
/// whole, strings ignored, so this can only err towards the exact scan.
fn may_hold_out_of_range_number(bytes: &[u8]) -> bool {
    const STRIDE: usize = 256;
    let in_number = |b: u8| matches!(b, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E');
    let long_digits = (STRIDE..bytes.len()).step_by(STRIDE).any(|at| {
        bytes[at].is_ascii_digit() && {
            let before = bytes[..at].iter().rev().take_while(|b| b.is_ascii_digit());
            let after = bytes[at..].iter().take_while(|b| b.is_ascii_digit());
            before.count() + after.count() >= STRIDE
        }
    });
    if long_digits {
        return true;
    }
    memchr::memchr2_iter(b'e', b'E', bytes).any(|at| {
        if at == 0 || !matches!(bytes[at - 1], b'0'..=b'9' | b'.') {
            return false;
        }
        let start = at
            - bytes[..at]
                .iter()
                .rev()
                .take_while(|&&b| in_number(b))
                .count();
        let end = at + bytes[at..].iter().take_while(|&&b| in_number(b)).count();
        std::str::from_utf8(&bytes[start..end])
            .ok()
            .and_then(|n| n.parse::<f64>().ok())
            .is_none_or(f64::is_infinite)
    })
}

/// [`out_of_range_number`], byte by byte. Only numbers with an exponent or over 300 digits can
/// be out of range: the others are not parsed again.
fn out_of_range_number_exact(bytes: &[u8]) -> Option<usize> {
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
            if out_of_range(number, number.iter().any(|&c| c == b'e' || c == b'E')) {
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
mod tests;
