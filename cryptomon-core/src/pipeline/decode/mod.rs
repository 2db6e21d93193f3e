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
struct Lean<'a> {
    #[serde(borrow)]
    schema: Cow<'a, str>,
    source: SourceName,
    tick: Tick,
    collected_at: DateTime<Utc>,
    #[serde(borrow)]
    quotes: Vec<LeanQuote<'a>>,
}

/// A quote as the metrics use it. The numbers the metrics do not use are only checked (see
/// [`check_unused`]), not converted: parsing them was a tenth of a full transform's time.
#[derive(Deserialize)]
struct LeanQuote<'a> {
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

impl LeanQuote<'_> {
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
    let mut taken = Taken::with_capacity(lean.quotes.len());
    for q in &lean.quotes {
        taken.take(&q.pair, q)?;
    }
    taken.samples(lean.source, lean.tick, lean.collected_at)
}

/// A snapshot's samples as its quotes are taken in, each checked as it comes.
struct Taken<'q> {
    /// The pairs so far, to refuse one seen twice.
    seen: HashSet<&'q str, FastHash>,
    pairs: String,
    quotes: Vec<(u32, f64, Option<f64>)>,
}

impl<'q> Taken<'q> {
    /// Room for `quotes` quotes.
    fn with_capacity(quotes: usize) -> Self {
        Taken {
            seen: HashSet::with_capacity_and_hasher(quotes, FastHash::default()),
            pairs: String::with_capacity(quotes * 8),
            quotes: Vec::with_capacity(quotes),
        }
    }

    /// Checks quote `q` (of pair `pair`) as the contract asks and keeps its sample.
    fn take(&mut self, pair: &'q str, q: &LeanQuote<'_>) -> std::result::Result<(), String> {
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
fn decode_strictly<'a>(body: &[u8], text: &'a str) -> std::result::Result<Lean<'a>, String> {
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
        refused_in_a_skipped_field(
            "unpaired surrogate",
            &[
                (r#""note":"\ud94e""#, true),
                (r#""note":"\udc00x""#, true),
                (r#""note":"\ud83d\u0041""#, true),
                (r#""note":"\ud83d""#, true),
                (r#""note":"\ud83d\ude00""#, false),
                (r#""note":"\\ud94e""#, false),
                (r#""note":"\u00e9\n\"""#, false),
            ],
        );
    }

    #[test]
    fn fuzz_snapshot_out_of_range_number_in_skipped_field_is_refused() {
        refused_in_a_skipped_field(
            "out of range",
            &[
                (r#""note":2.716222e6669439"#, true),
                (r#""note":-1E400"#, true),
                (r#""note":[1,1e309]"#, true),
                (r#""note":1e308"#, false),
                (r#""note":1e-999"#, false),
                (r#""note":"1e999""#, false),
                (r#""note":"\"1e999""#, false),
            ],
        );
    }

    /// Each `(extra, bad)`: the member `extra` in place of `raw`'s content makes the snapshot
    /// refused (with `want` in the reason) exactly when `bad`, and serde_json agrees on whether
    /// it is JSON at all.
    fn refused_in_a_skipped_field(want: &str, cases: &[(&str, bool)]) {
        for &(extra, bad) in cases {
            let text = body(r#"{"pair":"BTC-USD","price":1.0}"#).replace(r#""big":[1,2,3]"#, extra);
            assert!(text.contains(extra), "{text}");
            let got = decode_samples(text.as_bytes());
            let strict = serde_json::from_str::<serde_json::Value>(&text).is_ok();
            assert_eq!(got.is_err(), bad, "{extra}: {got:?}");
            assert_eq!(strict, !bad, "{extra}: serde_json disagrees");
            if bad {
                assert!(got.unwrap_err().contains(want), "{extra}");
            }
        }
    }

    /// The quick test in front of the exact scan must never hide a number the exact scan finds.
    #[test]
    fn out_of_range_number_agrees_with_the_exact_scan() {
        use proptest::prelude::*;
        let bytes = prop::collection::vec(
            prop::sample::select(b"0123456789eE.-+\" \\a,:[]".to_vec()),
            0..700,
        );
        proptest!(ProptestConfig::with_cases(4000), |(body in bytes)| {
            prop_assert_eq!(out_of_range_number(&body), out_of_range_number_exact(&body));
        });
        // Runs of digits too long for an f64, at every offset around the quick test's stride.
        for pad in [0, 1, 100, 254, 255, 256, 257, 511, 600] {
            for (digits, bad) in [(308, false), (309, true), (400, true)] {
                let body = format!("{}:{}]", "x".repeat(pad), "9".repeat(digits));
                let got = out_of_range_number(body.as_bytes());
                assert_eq!(got.is_some(), bad, "pad {pad}, {digits} digits");
                assert_eq!(got, out_of_range_number_exact(body.as_bytes()));
            }
        }
    }

    /// The `snapshot` fuzz target's property on its committed corpus and regressions: a body
    /// is accepted only with a sample, and only if it is valid JSON.
    #[test]
    fn fuzz_corpus_keeps_its_property() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
        let mut seen = 0;
        for dir in ["corpus/snapshot", "regressions/snapshot"] {
            let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
                continue;
            };
            for entry in entries {
                let path = entry.unwrap().path();
                let body = std::fs::read(&path).unwrap();
                if let Ok(samples) = decode_samples(&body) {
                    assert!(samples.len() > 0, "{}", path.display());
                    let valid = serde_json::from_slice::<serde_json::Value>(&body).is_ok();
                    assert!(valid, "accepted, but not JSON: {}", path.display());
                }
                seen += 1;
            }
        }
        assert!(seen > 0, "no corpus under {}", root.display());
    }

    #[test]
    fn unused_numbers_are_checked_not_parsed() {
        let quote = |extra: &str| body(&format!(r#"{{"pair":"BTC-USD","price":1.0{extra}}}"#));
        for ok in [
            r#","bid":null"#,
            r#","ask":-0"#,
            r#","high_24h":-1e-400"#,
            r#","low_24h":12.5e3,"quote_volume_24h":0"#,
        ] {
            assert!(decode_samples(quote(ok).as_bytes()).is_ok(), "{ok}");
        }
        for (bad, want) in [
            (r#","bid":-0.5"#, "a negative bid"),
            (r#","quote_volume_24h":-3"#, "a negative quote_volume_24h"),
            (r#","ask":"1.0""#, "ask of BTC-USD is \"1.0\", not a number"),
            (r#","high_24h":[1]"#, "not a number"),
            (r#","low_24h":{"a":1}"#, "not a number"),
            (
                r#","volume_24h":-1"#,
                "volume_24h -1e0 is neither 0 nor within",
            ),
            (
                r#","volume_24h":1e-320"#,
                "volume_24h 1e-320 is neither 0 nor within",
            ),
        ] {
            let err = decode_samples(quote(bad).as_bytes()).unwrap_err();
            assert!(err.contains(want), "{bad}: {err}");
        }
    }

    /// The scanner makes room for quotes from the text's length; a snapshot whose `raw` is most
    /// of it (an exchange's whole response) keeps only what its quotes need.
    #[test]
    fn a_large_raw_leaves_no_room_kept() {
        let text = body(r#"{"pair":"BTC-USD","price":1},{"pair":"ETH-USD","price":2}"#).replace(
            r#""big":[1,2,3]"#,
            &format!(r#""big":"{}""#, "x".repeat(200_000)),
        );
        let s = decode_samples(text.as_bytes()).unwrap();
        assert_eq!(s.len(), 2);
        assert!(s.quotes.capacity() <= 4, "{}", s.quotes.capacity());
        assert!(s.pairs.capacity() <= 32, "{}", s.pairs.capacity());
    }

    #[test]
    fn samples_keep_their_pairs_in_order() {
        let s = decode_samples(
            body(r#"{"pair":"BTC-USD","price":1},{"pair":"ETH-EUR","price":2,"volume_24h":3}"#)
                .as_bytes(),
        )
        .unwrap();
        let got: Vec<_> = s.iter().collect();
        assert_eq!(got, [("BTC-USD", 1.0, None), ("ETH-EUR", 2.0, Some(3.0))]);
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
        assert_eq!(s.iter().collect::<Vec<_>>(), [("BTC-USD", 1.5, None)]);
        assert_eq!(s.collected_at_ms % 1000, 500);
    }

    #[test]
    fn refuses_what_the_contract_refuses() {
        let cases = [
            (body(""), "no quote"),
            (body(r#"{"pair":"btc-usd","price":1}"#), "invalid pair"),
            (
                body(r#"{"pair":"BTC-USD","price":0}"#),
                "BTC-USD: price 0e0 is outside the accepted range",
            ),
            // Finite and positive, but their metrics would not be (issue 20).
            (
                body(r#"{"pair":"BTC-USD","price":1e-320}"#),
                "BTC-USD: price 1e-320 is outside the accepted range [1e-15, 1e15]",
            ),
            (
                body(r#"{"pair":"BTC-USD","price":1e300}"#),
                "price 1e300 is outside",
            ),
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
