//! The decoder on valid, invalid and extreme snapshots.

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
        body(r#"{"pair":"BTC-USD","price":1.5,"volume_24h":null,"bid":1.4,"exchange_time":"x"}"#)
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
