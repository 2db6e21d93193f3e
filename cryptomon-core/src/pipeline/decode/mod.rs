//! Decoding stored snapshots for the transform: only what the metrics use, checked as strictly
//! as the contract asks, without building a full [`Snapshot`] per object.
//!
//! serde_json reads the text into the borrowed types of `lean`; this module checks their values
//! against the contract and keeps the samples.

use std::collections::HashSet;

use chrono::{DateTime, Utc};

use crate::engine::WindowBuilder;
use crate::error::Result;
use crate::model::{Pair, SNAPSHOT_SCHEMA, SourceName, Tick, check_amount, check_price};

mod lean;

use lean::{Lean, LeanQuote};

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

/// Decodes a stored object into its samples, refusing what breaks the contract (another schema,
/// no quote, a malformed pair, a price or volume outside the accepted range (`PRICE_RANGE`,
/// `AMOUNT_RANGE`), a negative optional number, a pair twice) and any value, kept or not, that a
/// reader of the whole snapshot would refuse (a number out of `f64` range, a lone surrogate
/// escape). JSON has no NaN or infinity, so every number that parses is finite. The error says
/// what is wrong.
pub(crate) fn decode_samples(body: &[u8]) -> std::result::Result<Samples, String> {
    // The error then says where the text stops being UTF-8, not which string holds the byte.
    let text = std::str::from_utf8(body)
        .map_err(|e| format!("not valid JSON: invalid UTF-8 at byte {}", e.valid_up_to()))?;
    let lean: Lean<'_> = serde_json::from_str(text).map_err(|e| explain(body, &e))?;
    if lean.schema != SNAPSHOT_SCHEMA {
        return Err(format!("not a snapshot (schema {:?})", lean.schema));
    }
    let mut taken = Taken::for_quotes(&lean.quotes);
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
    /// Room for `quotes`' samples, exactly: a snapshot holds it until the window takes it in.
    fn for_quotes(quotes: &[LeanQuote<'_>]) -> Self {
        Taken {
            seen: HashSet::with_capacity_and_hasher(quotes.len(), FastHash::default()),
            pairs: String::with_capacity(quotes.iter().map(|q| q.pair.len()).sum()),
            quotes: Vec::with_capacity(quotes.len()),
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
        self,
        source: SourceName,
        tick: Tick,
        collected_at: DateTime<Utc>,
    ) -> std::result::Result<Samples, String> {
        if self.quotes.is_empty() {
            return Err("no quote".into());
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

/// A quick hasher for the pairs of one snapshot: this set is built per object on the hot path,
/// and needs no defence against crafted collisions (a snapshot holds a few thousand pairs).
type FastHash = foldhash::fast::FixedState;

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
            "hex escape",
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
    fn unused_numbers_are_checked() {
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

    /// A snapshot whose `raw` is most of its text (an exchange's whole response) keeps only what
    /// its quotes need.
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
