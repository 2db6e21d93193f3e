//! The request parameters that the handlers validate and `cryptomon-core` has no type for, and
//! their OpenAPI schemas.
//!
//! Each schema is built from the pattern that sits next to its validator (`Rule::NAME_PATTERN`,
//! and the core's `SourceName`, `Pair` and `Measure` for a metric id), so a request that the
//! document calls valid is one the handlers accept. The types here carry only a schema: the
//! handlers parse with the core's own types. Source names, pairs and candle intervals are
//! documented by the core types themselves (its `openapi` feature).

use std::borrow::Cow;

use cryptomon_core::alerting::Rule;
use cryptomon_core::model::pattern_schema;
use cryptomon_core::{Measure, Pair, SourceName, Tick};
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::{KnownFormat, RefOr, SchemaFormat};
use utoipa::{PartialSchema, ToSchema};

use super::errors::ApiError;

/// Longest metric id worth parsing: a source (32), a pair (41) and a measure, with margin.
const MAX_ID_LEN: usize = 100;

/// `pattern` without its anchors, to be embedded in a larger pattern.
fn unanchored(pattern: &str) -> &str {
    pattern.trim_start_matches('^').trim_end_matches('$')
}

/// What [`parse_metric_id`] accepts, as a regular expression.
pub(crate) fn metric_id_pattern() -> String {
    let measures: Vec<&str> = Measure::ALL.iter().map(|m| m.as_str()).collect();
    format!(
        "^{}:{}:({})$",
        unanchored(SourceName::PATTERN),
        unanchored(Pair::PATTERN),
        measures.join("|")
    )
}

/// Parses a metric id, `source:pair:measure`.
pub(crate) fn parse_metric_id(id: &str) -> Result<(SourceName, Pair, Measure), ApiError> {
    let bad = |why: String| {
        ApiError::BadRequest(format!(
            "invalid metric id: {why} (expected source:pair:measure, e.g. coinbase:BTC-USD:price)"
        ))
    };
    if id.len() > MAX_ID_LEN {
        return Err(bad("too long".into()));
    }
    let mut parts = id.split(':');
    let (Some(source), Some(pair), Some(measure), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad("not three parts".into()));
    };
    let source = SourceName::new(source).map_err(|e| bad(e.to_string()))?;
    let pair = Pair::new(pair).map_err(|e| bad(e.to_string()))?;
    let measure = measure
        .parse::<Measure>()
        .map_err(|_| bad(format!("unknown measure {measure:?} (price or volume)")))?;
    Ok((source, pair, measure))
}

/// Implements the schema traits for a parameter type, under its name in the document.
macro_rules! param_schema {
    ($ty:ident, $name:literal, $schema:expr) => {
        impl PartialSchema for $ty {
            fn schema() -> RefOr<Schema> {
                $schema
            }
        }

        impl ToSchema for $ty {
            fn name() -> Cow<'static, str> {
                Cow::Borrowed($name)
            }
        }
    };
}

/// A metric id: `source:pair:measure`.
pub(crate) struct MetricIdParam;
param_schema!(
    MetricIdParam,
    "MetricId",
    pattern_schema(
        "A metric id: source:pair:measure, with a source name, a canonical pair and a measure",
        &metric_id_pattern(),
        "demo:BTC-USD:price",
    )
);

/// The name of an alert rule: 1 to 64 of `a-z0-9_-`.
pub(crate) struct RuleNameParam;
param_schema!(
    RuleNameParam,
    "RuleName",
    pattern_schema(
        "An alert rule's name: 1 to 64 of a-z, 0-9, - and _",
        Rule::NAME_PATTERN,
        "price-spike",
    )
);

/// An RFC 3339 time, such as `2026-11-27T12:00:00Z`.
pub(crate) struct TimeParam;
param_schema!(
    TimeParam,
    "Time",
    ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
        .description(Some("An RFC 3339 time"))
        .examples(["2026-11-27T12:00:00Z"])
        .into()
);

/// The time of the query parameter `name`: an RFC 3339 time, or a 400 naming the parameter.
pub(crate) fn parse_time(name: &str, s: &str) -> Result<Tick, ApiError> {
    let invalid = || {
        ApiError::BadRequest(format!(
            "invalid {name} {:?}: expected an RFC 3339 time such as 2026-11-27T12:00:00Z",
            s.chars().take(40).collect::<String>()
        ))
    };
    // chrono also takes a space for the `T`; the document's `date-time` does not.
    if s.as_bytes().get(10) == Some(&b' ') {
        return Err(invalid());
    }
    let t = chrono::DateTime::parse_from_rfc3339(s).map_err(|_| invalid())?;
    Ok(Tick::floor(t.with_timezone(&chrono::Utc), 1))
}

#[cfg(test)]
mod tests {
    use cryptomon_core::CandleInterval;
    use proptest::prelude::*;
    use regex::Regex;

    use super::*;

    /// A validator reduced to its verdict.
    type Accepts = fn(&str) -> bool;

    /// Every documented pattern, with the validator it stands for.
    fn patterns() -> Vec<(String, Accepts)> {
        vec![
            (SourceName::PATTERN.to_owned(), |s| {
                SourceName::new(s).is_ok()
            }),
            (Pair::PATTERN.to_owned(), |s| Pair::new(s).is_ok()),
            (Rule::NAME_PATTERN.to_owned(), Rule::is_valid_name),
            (metric_id_pattern(), |s| parse_metric_id(s).is_ok()),
        ]
    }

    #[test]
    fn patterns_match_exactly_what_the_validators_accept() {
        let long = |c: &str, n: usize| c.repeat(n);
        let cases = [
            "",
            "coinbase",
            "okx_2",
            "a",
            "Coinbase",
            "1x",
            "_a",
            "a-b",
            "a/b",
            "..",
            "coinbase\n",
            &long("a", 32),
            &long("a", 33),
            &long("a", 64),
            &long("a", 65),
            "BTC-USD",
            "1INCH-USD",
            "BTC-Q1",
            "btc-usd",
            "BTC-",
            "-USD",
            "BTC-USD-X",
            "BTC_USD",
            "BTC-US D",
            "BTC-USD\n",
            "BTÇ-USD",
            &format!("{}-USD", long("A", 20)),
            &format!("{}-USD", long("A", 21)),
            "price-spike",
            "volume_spike-2",
            "Price-spike",
            "coinbase:BTC-USD:price",
            "demo_b:ETH-USDT:volume",
            "coinbase:BTC-USD",
            "coinbase:BTC-USD:temp",
            "coinbase:BTC-USD:price:x",
            "coinbase:btc-usd:price",
            "Coinbase:BTC-USD:price",
            ":BTC-USD:price",
            "coinbase:BTC-USD:price\n",
            &format!(
                "{}:{}-{}:volume",
                long("a", 32),
                long("A", 20),
                long("B", 20)
            ),
            &format!(
                "{}:{}-{}:volume",
                long("a", 33),
                long("A", 20),
                long("B", 20)
            ),
        ];
        for (pattern, valid) in patterns() {
            let regex = Regex::new(&pattern).unwrap();
            for case in cases {
                assert_eq!(regex.is_match(case), valid(case), "{pattern} on {case:?}");
            }
        }
    }

    #[test]
    fn the_interval_enum_is_what_the_parser_accepts() {
        for interval in ["1m", "5m", "15m", "1h", "2m", "", "5M"] {
            assert_eq!(
                CandleInterval::ALL.iter().any(|i| i.as_str() == interval),
                interval.parse::<CandleInterval>().is_ok(),
                "{interval}"
            );
        }
    }

    #[test]
    fn metric_ids_parse() {
        let (s, p, m) = parse_metric_id("coinbase:BTC-USD:volume").unwrap();
        assert_eq!(
            (s.as_str(), p.as_str(), m),
            ("coinbase", "BTC-USD", Measure::Volume)
        );
        assert!(parse_metric_id(&"a".repeat(500)).is_err());
    }

    proptest! {
        // Strings over the characters the patterns care about, so many are near misses.
        #[test]
        fn patterns_agree_with_validators_on_near_misses(s in "[a-cA-C0-2_:\\-. ]{0,12}(price|volume)?") {
            for (pattern, valid) in patterns() {
                let regex = Regex::new(&pattern).unwrap();
                prop_assert_eq!(regex.is_match(&s), valid(&s), "{} on {:?}", pattern, s);
            }
        }
    }
}
