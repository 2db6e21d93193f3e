//! Canonical market pairs (`BASE-QUOTE`) and source names.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Error, Result};

/// Longest asset symbol accepted on either side of a pair. Real symbols are short; the cap keeps a
/// hostile body from filling the store with megabyte "pairs".
const MAX_SYMBOL_LEN: usize = 20;

/// A canonical market pair: upper-case `BASE-QUOTE`, each side 1 to 20 of `A-Z0-9`.
///
/// Exchange spellings (`XXBTZUSD`, `BTCUSDT`) are mapped to this form by the sources; the rest of
/// cryptomon only ever sees canonical pairs.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pair(String);

impl Pair {
    /// What [`Pair::check`] accepts, as a regular expression (for API documents).
    pub const PATTERN: &'static str = "^[A-Z0-9]{1,20}-[A-Z0-9]{1,20}$";

    /// Parses and validates a canonical pair.
    pub fn new(s: &str) -> Result<Self> {
        Pair::check(s).map_err(|reason| Error::InvalidPair {
            pair: s.to_owned(),
            reason,
        })?;
        Ok(Pair(s.to_owned()))
    }

    /// Checks that `s` is a canonical pair without building one; `Err` says what is wrong.
    pub fn check(s: &str) -> std::result::Result<(), &'static str> {
        // `memchr`, not `split_once('-')`: that goes through the generic char searcher, which
        // compares each match with `memcmp`, for every quote a transform reads.
        let dash = memchr::memchr(b'-', s.as_bytes()).ok_or("expected BASE-QUOTE")?;
        let (base, quote) = (&s[..dash], &s[dash + 1..]);
        for side in [base, quote] {
            if side.is_empty() {
                return Err("empty base or quote");
            }
            if side.len() > MAX_SYMBOL_LEN {
                return Err("symbol longer than 20 characters");
            }
            if !side
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
            {
                return Err("symbols must be upper-case A-Z or 0-9");
            }
        }
        Ok(())
    }

    /// Builds `BASE-QUOTE` from its two sides.
    pub fn from_parts(base: &str, quote: &str) -> Result<Self> {
        Pair::new(&format!("{base}-{quote}"))
    }

    /// The pair as `BASE-QUOTE`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The base asset (`BTC` of `BTC-USD`).
    pub fn base(&self) -> &str {
        self.0.split_once('-').map_or("", |(b, _)| b)
    }

    /// The quote asset (`USD` of `BTC-USD`).
    pub fn quote(&self) -> &str {
        self.0.split_once('-').map_or("", |(_, q)| q)
    }
}

impl fmt::Display for Pair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Pair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pair({})", self.0)
    }
}

impl FromStr for Pair {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Pair::new(s)
    }
}

// Hash and Eq are derived from the one `String` field, so they agree with `str`'s: maps keyed
// by `Pair` can be searched with a `&str`.
impl std::borrow::Borrow<str> for Pair {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Pair {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Serialize for Pair {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Pair {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Pair::new(&s).map_err(serde::de::Error::custom)
    }
}

/// The name of a source as it appears in snapshots and store keys (`coinbase`, `demo`):
/// 1 to 32 of `a-z0-9_`, starting with a letter.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SourceName(String);

impl SourceName {
    /// What [`SourceName::new`] accepts, as a regular expression (for API documents).
    pub const PATTERN: &'static str = "^[a-z][a-z0-9_]{0,31}$";

    /// Parses and validates a source name.
    pub fn new(s: &str) -> Result<Self> {
        let invalid = |reason| Error::InvalidSource {
            source_name: s.to_owned(),
            reason,
        };
        if s.is_empty() || s.len() > 32 {
            return Err(invalid("must be 1 to 32 characters"));
        }
        if !s.as_bytes()[0].is_ascii_lowercase() {
            return Err(invalid("must start with a lower-case letter"));
        }
        if !s
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            return Err(invalid("only a-z, 0-9 and _ are allowed"));
        }
        Ok(SourceName(s.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SourceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for SourceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SourceName({})", self.0)
    }
}

impl std::borrow::Borrow<str> for SourceName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl FromStr for SourceName {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        SourceName::new(s)
    }
}

impl Serialize for SourceName {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for SourceName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        SourceName::new(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_are_validated() {
        for ok in ["BTC-USD", "ETH-USDT", "1INCH-USD", "BTC-Q1"] {
            assert_eq!(Pair::new(ok).unwrap().as_str(), ok);
        }
        for bad in [
            "",
            "BTC",
            "btc-usd",
            "BTC-",
            "-USD",
            "BTC-USD-X",
            "BTC_USD",
            "BTC-US D",
        ] {
            let err = Pair::new(bad).unwrap_err().to_string();
            assert!(err.contains(&format!("{bad:?}")), "{err}");
        }
        assert!(Pair::new(&format!("{}-USD", "A".repeat(21))).is_err());
    }

    #[test]
    fn pair_parts() {
        let p = Pair::new("BTC-USD").unwrap();
        assert_eq!((p.base(), p.quote()), ("BTC", "USD"));
    }

    #[test]
    fn source_names_are_key_safe() {
        assert!(SourceName::new("coinbase").is_ok());
        assert!(SourceName::new("okx_2").is_ok());
        for bad in ["", "Coinbase", "a/b", "..", "1x", "a-b", &"a".repeat(33)] {
            assert!(SourceName::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn pair_deserialization_validates() {
        assert!(serde_json::from_str::<Pair>("\"BTC-USD\"").is_ok());
        assert!(serde_json::from_str::<Pair>("\"btc\"").is_err());
    }
}
