//! Store keys of the contract, and the rules every key must follow.
//!
//! Keys use `/` and Hive-style partitions (`source=…/date=…`) so query engines can prune them.

use crate::error::{Error, Result};
use crate::model::{SourceName, Tick};

/// Prefix of every raw snapshot.
pub const RAW_PREFIX: &str = "raw/";
/// The 24-hour summary.
pub const SUMMARY_KEY: &str = "aggregates/summary.json";
/// The transform's window state: the deduplicated samples of the window. Internal and
/// versioned: a reader that finds another version rebuilds it from raw.
pub const WINDOW_KEY: &str = "aggregates/window.v1.parquet";

/// Prefix of the history: one Parquet file per closed UTC day, Hive-partitioned by date.
pub const HISTORY_PREFIX: &str = "history/";

/// The key of one day of history: `history/date={YYYY-MM-DD}/samples.parquet`.
pub fn history_key(date: &str) -> String {
    format!("{HISTORY_PREFIX}date={date}/samples.parquet")
}

/// Longest key accepted; S3's own limit is 1,024 bytes.
const MAX_KEY_LEN: usize = 1024;

/// The key of one source's snapshot at one tick:
/// `raw/source={source}/date={YYYY-MM-DD}/{YYYYMMDDTHHMMSSZ}.json`.
pub fn raw_key(source: &SourceName, tick: Tick) -> String {
    format!(
        "{RAW_PREFIX}source={source}/date={}/{}.json",
        tick.date(),
        tick.compact()
    )
}

/// The prefix of one source's date partition.
pub fn raw_partition(source: &SourceName, date: &str) -> String {
    format!("{RAW_PREFIX}source={source}/date={date}/")
}

/// A raw key taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawKey {
    /// The `source=` partition.
    pub source: SourceName,
    /// The tick in the file name.
    pub tick: Tick,
}

/// Parses a key of the raw layout; `None` for any other key (a foreign object, a temp file).
pub fn parse_raw_key(key: &str) -> Option<RawKey> {
    let rest = key.strip_prefix(RAW_PREFIX)?;
    let mut parts = rest.split('/');
    let source = SourceName::new(parts.next()?.strip_prefix("source=")?).ok()?;
    let date = parts.next()?.strip_prefix("date=")?;
    let name = parts.next()?.strip_suffix(".json")?;
    let tick = Tick::parse_compact(name)?;
    // The partition is the tick's date: `YYYY-MM-DD` against the name's `YYYYMMDD`.
    let same_date = date.len() == 10
        && date.as_bytes()[4] == b'-'
        && date.as_bytes()[7] == b'-'
        && date[..4] == name[..4]
        && date[5..7] == name[4..6]
        && date[8..] == name[6..8];
    if parts.next().is_some() || !same_date {
        return None;
    }
    Some(RawKey { source, tick })
}

/// Checks a key (or a prefix, where `allow_trailing_slash`) against the contract's rules:
/// no `..` or `.` segment, no leading `/`, no backslash, no empty segment, no control
/// characters. A file store relies on this to stay inside its root.
pub fn validate_key(key: &str) -> Result<()> {
    check(key, false)
}

/// As [`validate_key`], for a listing prefix: may be empty or end in `/`.
pub fn validate_prefix(prefix: &str) -> Result<()> {
    if prefix.is_empty() {
        return Ok(());
    }
    check(prefix, true)
}

fn check(key: &str, prefix: bool) -> Result<()> {
    let invalid = |reason| Error::InvalidKey {
        key: key.to_owned(),
        reason,
    };
    if key.is_empty() {
        return Err(invalid("empty key"));
    }
    if key.len() > MAX_KEY_LEN {
        return Err(invalid("longer than 1024 bytes"));
    }
    if key.starts_with('/') {
        return Err(invalid("leading '/'"));
    }
    if key.contains('\\') {
        return Err(invalid("backslash"));
    }
    if key.chars().any(char::is_control) {
        return Err(invalid("control character"));
    }
    let body = if prefix {
        key.strip_suffix('/').unwrap_or(key)
    } else {
        key
    };
    for segment in body.split('/') {
        match segment {
            "" => return Err(invalid("empty path segment")),
            "." | ".." => return Err(invalid("'.' or '..' segment")),
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the `keys` fuzz target: chrono read `T10000Z` as 10:00:00, so a second spelling
    /// of a tick's key parsed as a raw key and could have been taken in beside the real one.
    #[test]
    fn fuzz_keys_narrow_time_field_is_not_a_raw_key() {
        for key in [
            "raw/source=binance/date=2026-11-26/20261126T10000Z.json",
            "raw/source=binance/date=2026-11-26/2026112T100000Z.json",
            "raw/source=binance/date=2026-11-26/20261126T1000000Z.json",
        ] {
            assert!(parse_raw_key(key).is_none(), "{key} parsed");
        }
        let canonical = "raw/source=binance/date=2026-11-26/20261126T100000Z.json";
        let raw = parse_raw_key(canonical).unwrap();
        assert_eq!(raw_key(&raw.source, raw.tick), canonical);
    }

    #[test]
    fn raw_keys_round_trip() {
        let source = SourceName::new("kraken").unwrap();
        let tick = Tick::parse("2026-11-27T23:48:00Z").unwrap();
        let key = raw_key(&source, tick);
        assert_eq!(
            key,
            "raw/source=kraken/date=2026-11-27/20261127T234800Z.json"
        );
        assert_eq!(parse_raw_key(&key), Some(RawKey { source, tick }));
    }

    #[test]
    fn foreign_keys_do_not_parse() {
        for key in [
            "raw/source=kraken/date=2026-11-27/20261127T234800Z.txt",
            "raw/source=kraken/date=2026-11-26/20261127T234800Z.json",
            "raw/source=Kraken/date=2026-11-27/20261127T234800Z.json",
            "raw/kraken/2026-11-27/20261127T234800Z.json",
            "aggregates/summary.json",
            "raw/source=kraken/date=2026-11-27/x/20261127T234800Z.json",
        ] {
            assert_eq!(parse_raw_key(key), None, "{key}");
        }
    }

    #[test]
    fn escaping_keys_are_refused() {
        for key in [
            "",
            "/etc/passwd",
            "../x",
            "a/../b",
            "a/./b",
            "a//b",
            "a/",
            "a\\b",
            "a\nb",
            "a\0b",
        ] {
            let err = validate_key(key).unwrap_err().to_string();
            assert!(err.contains("invalid store key"), "{key:?}: {err}");
        }
        validate_key("raw/source=x/date=2026-01-01/a.json").unwrap();
        validate_prefix("raw/").unwrap();
        validate_prefix("").unwrap();
        assert!(validate_prefix("raw//").is_err());
    }
}
