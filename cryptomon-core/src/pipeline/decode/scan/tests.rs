//! The scanner against serde_json, the reference it must agree with.

use proptest::prelude::*;

use super::digits::leading_digits;
use super::*;

/// What a decoded snapshot holds, floats as bits (`-0.0` is not `0.0`).
type View = (String, String, i64, Vec<(String, u64, Option<u64>)>);

fn view(samples: &Samples) -> View {
    let quotes = samples
        .iter()
        .map(|(pair, price, volume)| (pair.to_owned(), price.to_bits(), volume.map(f64::to_bits)));
    (
        samples.source.to_string(),
        samples.tick.to_string(),
        samples.collected_at_ms,
        quotes.collect(),
    )
}

/// The reference: serde_json's derived decoder, the checks before it and the contract's
/// after it, as `decode_samples` falls back to.
fn reference(text: &str) -> Option<View> {
    super::super::decode_slowly(text.as_bytes(), text)
        .ok()
        .map(|s| view(&s))
}

fn ws() -> BoxedStrategy<String> {
    prop_oneof![4 => Just(String::new()), 1 => "[ \t\n\r]{1,3}"].boxed()
}

/// Numbers, seldom negative: a negative price or optional number makes the whole snapshot
/// refused, and most snapshots should be read for the comparison to say much.
fn number() -> BoxedStrategy<String> {
    prop_oneof![
        40 => "(0|[1-9][0-9]{0,8})\\.[0-9]{1,8}",
        8 => "(0|[1-9][0-9]{0,25})(\\.[0-9]{1,25})?([eE][+-]?[0-9]{1,2})?",
        1 => "-(0|[1-9][0-9]{0,25})(\\.[0-9]{1,25})?([eE][+-]?[0-9]{1,3})?",
        1 => Just("-0".to_owned()),
        1 => Just("0.0".to_owned()),
        1 => Just("1e-400".to_owned()),
        // Not JSON: the scanner must give up on them as serde_json refuses them.
        1 => prop_oneof![
            Just("01"),
            Just("1."),
            Just(".5"),
            Just("+1"),
            Just("1e"),
            Just("-")
        ]
        .prop_map(str::to_owned),
    ]
    .boxed()
}

fn string() -> BoxedStrategy<String> {
    prop_oneof![
        // Plain text and valid escapes, as most strings are.
        30 => "\"([a-zA-Z0-9 :.é-]|\\\\[nt\"\\\\/]|\\\\u00[0-9a-fA-F]{2})*\"",
        // Escapes of every kind, surrogates paired or not, and a few that are not JSON.
        1 => "\"([a-zA-Z0-9 :.é-]|\\\\[nt\"\\\\/]|\\\\u00[0-9a-fA-F]{2}|\\\\x|\\\\u[dD][89abAB][0-9a-f]{2}(\\\\u[dD][c-fC-F][0-9a-f]{2})?|\\\\u[dD][c-f][0-9a-f]{2})*\"",
    ]
    .boxed()
}

/// Any JSON value (and a few near misses), nested a little.
fn value() -> BoxedStrategy<String> {
    let leaf = prop_oneof![
        4 => Just("null".to_owned()),
        4 => Just("true".to_owned()),
        4 => Just("false".to_owned()),
        1 => Just("nul".to_owned()),
        8 => number(),
        8 => string(),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec((ws(), inner.clone()), 0..4).prop_map(|items| {
                let items: Vec<_> = items.into_iter().map(|(w, v)| format!("{w}{v}")).collect();
                format!("[{}]", items.join(","))
            }),
            prop::collection::vec((string(), inner), 0..4).prop_map(|members| {
                let members: Vec<_> = members.iter().map(|(k, v)| format!("{k}:{v}")).collect();
                format!("{{{}}}", members.join(", "))
            }),
        ]
    })
    .boxed()
}

fn optional_number() -> BoxedStrategy<String> {
    prop_oneof![3 => number(), 1 => Just("null".to_owned())].boxed()
}

/// A quote's members, in any order, some missing, some twice, some unknown; and whether
/// the scanner may give up on it where serde_json does not (an escape in the pair, a
/// repeated member).
fn quote() -> BoxedStrategy<(String, bool)> {
    let pair = prop_oneof![
        40 => "\"[A-Z]{2,5}-[A-Z]{3,4}\"".prop_map(|p| (p, false)),
        1 => Just(("\"BTC\\u002DUSD\"".to_owned(), true)),
        1 => string().prop_map(|p| { let escaped = p.contains('\\'); (p, escaped) }),
    ];
    let price = prop_oneof![40 => number(), 1 => Just("null".to_owned()), 1 => string()];
    // In the collector's order (the order of the members matters to neither reader, but a
    // quote as the collector writes it should be among those tried).
    let keys = [
        "bid",
        "ask",
        "volume_24h",
        "quote_volume_24h",
        "high_24h",
        "low_24h",
    ];
    let optional =
        keys.map(|k| prop::option::weighted(0.7, optional_number().prop_map(move |v| (k, v))));
    let exchange_time = prop::option::weighted(0.6, value());
    let extra = prop::option::weighted(0.2, ("\"[a-z_]{1,6}\"", value()));
    let twice = prop::option::weighted(
        0.02,
        prop::sample::select(vec!["pair", "price", "bid", "volume_24h", "exchange_time"]),
    );
    let pair = prop::option::weighted(0.99, pair);
    let price = prop::option::weighted(0.99, price);
    (pair, price, optional, exchange_time, extra, twice, ws())
        .prop_flat_map(|(pair, price, optional, exchange_time, extra, twice, w)| {
            let mut may_give_up = pair.as_ref().is_some_and(|p| p.1);
            let mut members = Vec::new();
            members.extend(pair.map(|p| format!("\"pair\":{}", p.0)));
            members.extend(price.map(|p| format!("\"price\":{w}{p}")));
            let optional = optional.into_iter().flatten();
            members.extend(optional.map(|(k, v)| format!("\"{k}\": {v}")));
            members.extend(exchange_time.map(|v| format!("\"exchange_time\":{v}")));
            members.extend(extra.map(|(k, v)| format!("{k}:{v}")));
            if let Some(key) = twice
                && let Some(m) = members
                    .iter()
                    .find(|m| m.starts_with(&format!("\"{key}\"")))
            {
                members.push(m.clone());
                may_give_up = true;
            }
            let members = prop_oneof![Just(members.clone()), Just(members).prop_shuffle()];
            members.prop_map(move |m| (format!("{{{}}}", m.join(",")), may_give_up))
        })
        .boxed()
}

/// A snapshot as a collector writes it, or nearly; and whether the scanner may give up on
/// it where serde_json does not.
fn snapshot() -> BoxedStrategy<(String, bool)> {
    let schema = prop_oneof![30 => Just("\"cryptomon.snapshot/v1\""), 1 => Just("\"other/v1\"")];
    let source = prop_oneof![
        30 => Just(("\"kraken\"", false)),
        1 => Just(("\"Kraken\"", false)),
        1 => Just(("\"kra\\u006En\"", true)),
    ];
    let tick = prop_oneof![
        9 => Just("\"2026-11-27T06:53:00Z\""),
        1 => Just("\"2026-11-27T06:53:30Z\""),
    ];
    let collected = prop_oneof![
        30 => Just("\"2026-11-27T06:53:01.417Z\""),
        1 => Just("\"2026-11-27 06:53\""),
        1 => Just("\"2026-11-27T07:53:01+01:00\""),
    ];
    let quotes = prop::collection::vec((ws(), quote()), 1..5).prop_map(|quotes| {
        let may_give_up = quotes.iter().any(|(_, (_, g))| *g);
        let q: Vec<_> = quotes
            .into_iter()
            .map(|(w, (q, _))| format!("{w}{q}"))
            .collect();
        (format!("[{}]", q.join(",")), may_give_up)
    });
    let raw = prop::option::weighted(0.5, value());
    (schema, source, tick, collected, quotes, raw, ws())
        .prop_flat_map(|(schema, source, tick, collected, quotes, raw, w)| {
            let may_give_up = source.1 || quotes.1;
            let mut members = vec![
                format!("\"schema\":{schema}"),
                format!("\"source\":{w}{}", source.0),
                format!("\"tick\":{tick}"),
                format!("\"collected_at\" : {collected}"),
                format!("\"quotes\":{}", quotes.0),
            ];
            members.extend(raw.map(|r| format!("\"raw\":{r}")));
            let w = w.clone();
            Just(members)
                .prop_shuffle()
                .prop_map(move |m| (format!("{w}{{{}}}{w}", m.join(",")), may_give_up))
        })
        .boxed()
}

/// One byte edit at a spot: a deletion, or a JSON-significant byte put in or over one.
fn mutated(text: String, at: usize, edit: u8, byte: u8) -> String {
    let mut bytes = text.into_bytes();
    let at = at % (bytes.len() + 1);
    let byte = b"{}[],:\"\\ 0-.e\n"[usize::from(byte) % 14];
    match edit % 3 {
        0 if at < bytes.len() => drop(bytes.remove(at)),
        1 if at < bytes.len() => bytes[at] = byte,
        _ => bytes.insert(at, byte),
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    /// Where the scanner answers, serde_json gives the same; and it answers whenever
    /// serde_json accepts, but for an escape in a field it keeps or a repeated member.
    #[test]
    fn the_scanner_agrees_with_serde_json((text, may_give_up) in snapshot()) {
        let fast = scan(&text).map(|l| view(&l));
        let slow = reference(&text);
        if fast.is_some() || !may_give_up {
            prop_assert_eq!(&fast, &slow, "{}", text);
        }
    }

    /// Broken snapshots: the scanner never accepts what serde_json refuses, nor reads it
    /// otherwise.
    #[test]
    fn the_scanner_never_accepts_what_serde_json_refuses(
        (text, _) in snapshot(), at in any::<usize>(), edit in any::<u8>(), byte in any::<u8>()
    ) {
        let text = mutated(text, at, edit, byte);
        if let Some(fast) = scan(&text) {
            prop_assert_eq!(Some(view(&fast)), reference(&text), "{}", text);
        }
    }
}

#[test]
fn a_collector_snapshot_is_scanned() {
    let text = r#"{"schema":"cryptomon.snapshot/v1","source":"kraken","tick":"2026-11-27T06:53:00Z",
        "collected_at":"2026-11-27T06:53:01.417Z","quotes":[{"pair":"BTC-USD","price":93316.76697217,
        "bid":93314.90063683,"ask":null,"volume_24h":5065.0005,"high_24h":95183.10231161,
        "low_24h":91450.43163273,"exchange_time":"2026-11-27T06:53:00Z"},
        {"pair":"ETH-USD","price":3076,"volume_24h":null}],"raw":{"note":"synth\u00e9tic","n":[1,2.5e3,{}]}}"#;
    let fast = scan(text).expect("the scanner reads a collector's snapshot");
    assert_eq!(Some(view(&fast)), reference(text));
    assert_eq!(
        fast.iter().collect::<Vec<_>>(),
        [
            ("BTC-USD", 93316.76697217, Some(5065.0005)),
            ("ETH-USD", 3076.0, None)
        ]
    );
}

#[test]
fn the_scanner_gives_up_on_what_it_does_not_expect() {
    let base = |quote: &str| {
        format!(
            r#"{{"schema":"cryptomon.snapshot/v1","source":"kraken","tick":"2026-11-27T06:53:00Z","collected_at":"2026-11-27T06:53:01Z","quotes":[{quote}]}}"#
        )
    };
    for quote in [
        r#"{"pair":"BTC\u002DUSD","price":1}"#,
        r#"{"pair":"BTC-USD","price":1,"price":2}"#,
        r#"{"pair":"BTC-USD"}"#,
        r#"{"pair":"BTC-USD","price":1e999}"#,
        r#"{"pair":"BTC-USD","pr\u0069ce":1}"#,
        r#"{"pair":"BTC-USD","price":1,"exchange_time":"a","exchange_time":"b"}"#,
        r#"{"pair":"BTC-USD","price":01}"#,
        r#"{"pair":"BTC-USD","price":1,"x":"tab	in a string"}"#,
    ] {
        assert!(scan(&base(quote)).is_none(), "{quote}");
    }
    let deep = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
    assert!(
        scan(&base(&format!(
            r#"{{"pair":"BTC-USD","price":1,"x":{deep}}}"#
        )))
        .is_none()
    );
    assert!(scan(&format!("{} x", base(r#"{"pair":"BTC-USD","price":1}"#))).is_none());
}

/// The fast path knows every key the collector writes: a quote written from the model, every
/// field set, is read by it, to the same values as by the general path.
#[test]
fn a_quote_as_the_collector_writes_it_is_read_by_its_keys() {
    let quote = crate::model::Quote {
        bid: Some(93314.90063683),
        ask: Some(93318.63330751),
        volume_24h: Some(5065.0005),
        quote_volume_24h: Some(472_000_000.5),
        high_24h: Some(95183.10231161),
        low_24h: Some(91450.43163273),
        exchange_time: Some("2026-11-27T06:53:00Z".parse().unwrap()),
        ..crate::model::Quote::new(crate::model::Pair::new("BTC-USD").unwrap(), 93316.76697217)
    };
    let text = serde_json::to_string(&quote).unwrap();
    let in_order = Scanner { text: &text, at: 0 }.quote_known_keys();
    let any_order = Scanner { text: &text, at: 0 }.quote_any_keys();
    let view = |q: Option<(&str, QuoteView<'_>)>| {
        q.map(|(_, q)| {
            (
                q.pair.into_owned(),
                q.price,
                q.volume_24h,
                [q.bid, q.ask, q.quote_volume_24h, q.high_24h, q.low_24h]
                    .map(|u| u.map(str::to_owned)),
            )
        })
    };
    let in_order = view(in_order);
    assert!(in_order.is_some(), "{text} was not read by its keys");
    assert_eq!(in_order, view(any_order));
}

/// A naive reading of the digits at the start of eight bytes.
fn naive_digits(bytes: &[u8]) -> (usize, u64) {
    let count = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
    let value = bytes[..count]
        .iter()
        .fold(0u64, |v, &b| v * 10 + u64::from(b - b'0'));
    (count, value)
}

fn digits_then_anything() -> BoxedStrategy<Vec<u8>> {
    ("[0-9]{0,8}", prop::collection::vec(any::<u8>(), 8))
        .prop_map(|(digits, rest)| {
            let mut bytes = digits.into_bytes();
            bytes.extend(rest);
            bytes.truncate(8);
            bytes
        })
        .boxed()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(10_000))]

    /// Eight bytes at a time read as one at a time would, whatever follows the digits
    /// (the bytes next to '0' and '9', and those that borrow or carry, included).
    #[test]
    fn leading_digits_reads_as_a_loop_over_the_bytes(bytes in digits_then_anything()) {
        let chunk = u64::from_le_bytes(bytes.clone().try_into().unwrap());
        prop_assert_eq!(leading_digits(chunk), naive_digits(&bytes));
    }

    /// A run of digits of any length, anywhere in the text, near its end too.
    #[test]
    fn digit_run_reads_every_digit(prefix in "[0-9a]{0,3}", digits in "[0-9]{0,30}", tail in "[^0-9]{0,9}") {
        let text = format!("{prefix}{digits}{tail}");
        let mut mantissa = 7;
        let n = digit_run::<true>(text.as_bytes(), prefix.len(), &mut mantissa);
        prop_assert_eq!(n, digits.len());
        // Counting only: the same length, the mantissa untouched.
        let mut untouched = 7;
        prop_assert_eq!(digit_run::<false>(text.as_bytes(), prefix.len(), &mut untouched), n);
        prop_assert_eq!(untouched, 7);
        if digits.len() <= 17 {
            let want = format!("7{digits}").parse::<u64>().unwrap();
            prop_assert_eq!(mantissa, want);
        }
    }

    /// The value read on the way is the one `str::parse` gives, to the bit.
    #[test]
    fn a_number_reads_as_str_parse_does(text in "-?(0|[1-9][0-9]{0,20})(\\.[0-9]{1,24})?") {
        let mut scanner = Scanner { text: &text, at: 0 };
        let value = scanner.float().map(f64::to_bits);
        prop_assert_eq!(value, text.parse::<f64>().ok().map(f64::to_bits), "{}", text);
        prop_assert_eq!(scanner.at, text.len());
    }
}
