//! Strict numbers from exchange bodies: decimals sent as strings (`"63212.97"`) or as JSON numbers
//! (`67187.33`, `20000000000`, `1.2e-5`), and `null` where a field may be absent.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

/// A number as an exchange sends it. Deserializes from a JSON number or from a string holding a
/// plain decimal (sign, digits, point, exponent); refuses `"NaN"`, `"inf"`, `""`, hex and
/// anything else a lenient `str::parse` would accept or guess at.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Decimal(pub(crate) f64);

/// Parses a plain decimal string, or explains why it is not one.
pub(crate) fn parse_decimal(s: &str) -> Result<f64, String> {
    let plain = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E'))
        && s.bytes().any(|b| b.is_ascii_digit());
    if !plain {
        return Err(format!("{s:?} is not a decimal number"));
    }
    s.parse::<f64>()
        .map_err(|_| format!("{s:?} is not a decimal number"))
}

impl<'de> Deserialize<'de> for Decimal {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct DecimalVisitor;
        impl Visitor<'_> for DecimalVisitor {
            type Value = Decimal;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number or a string holding a decimal number")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Decimal, E> {
                Ok(Decimal(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Decimal, E> {
                Ok(Decimal(v as f64))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Decimal, E> {
                Ok(Decimal(v as f64))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Decimal, E> {
                parse_decimal(v).map(Decimal).map_err(E::custom)
            }
        }
        d.deserialize_any(DecimalVisitor)
    }
}

/// The value of an optional decimal.
pub(crate) fn opt(d: Option<Decimal>) -> Option<f64> {
    d.map(|d| d.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn de(json: &str) -> Result<Decimal, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn strings_numbers_and_exponents() {
        assert_eq!(de("\"63212.97\"").unwrap().0, 63212.97);
        assert_eq!(de("\"76700\"").unwrap().0, 76700.0);
        assert_eq!(de("\"0.00000000\"").unwrap().0, 0.0);
        assert_eq!(de("67187.3358936566").unwrap().0, 67187.3358936566);
        assert_eq!(de("20000000000").unwrap().0, 2e10);
        assert_eq!(de("1.2e-5").unwrap().0, 1.2e-5);
        assert_eq!(de("\"1.2E-5\"").unwrap().0, 1.2e-5);
        assert_eq!(de("\"-94.99999800\"").unwrap().0, -94.999998);
    }

    #[test]
    fn refuses_what_is_not_a_plain_decimal() {
        for bad in [
            "\"NaN\"",
            "\"inf\"",
            "\"-infinity\"",
            "\"\"",
            "\"0x10\"",
            "\"1,5\"",
            "\" 1\"",
            "\"e\"",
            "\"1e\"",
            "true",
            "[1]",
            "{}",
            "null",
        ] {
            assert!(de(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn null_is_none_when_optional() {
        let v: Option<Decimal> = serde_json::from_str("null").unwrap();
        assert_eq!(opt(v), None);
        let v: Option<Decimal> = serde_json::from_str("\"3\"").unwrap();
        assert_eq!(opt(v), Some(3.0));
    }
}
