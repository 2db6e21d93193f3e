//! Store keys of the contract, and the rules every key must follow.
//!
//! Keys use `/` and Hive-style partitions (`source=…/date=…`) so query engines can prune them.

use crate::error::{Error, Result};
use crate::model::{HOUR, SourceName, Tick};

/// Prefix of every raw snapshot.
pub const RAW_PREFIX: &str = "raw/";
/// Prefix of every backfill object.
pub const BACKFILL_PREFIX: &str = "backfill/";
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
    let (source, tick) = parse_partitioned(key.strip_prefix(RAW_PREFIX)?)?;
    Some(RawKey { source, tick })
}

/// The key of one source's backfill object for the UTC hour holding `hour`:
/// `backfill/source={source}/date={YYYY-MM-DD}/{YYYYMMDDTHH}0000Z.json`.
pub fn backfill_key(source: &SourceName, hour: Tick) -> String {
    let hour = Tick::from_unix(hour.unix().div_euclid(HOUR) * HOUR);
    format!(
        "{BACKFILL_PREFIX}source={source}/date={}/{}.json",
        hour.date(),
        hour.compact()
    )
}

/// The prefix of one source's backfill objects.
pub fn backfill_source_prefix(source: &SourceName) -> String {
    format!("{BACKFILL_PREFIX}source={source}/")
}

/// A backfill key taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackfillKey {
    /// The `source=` partition.
    pub source: SourceName,
    /// The hour in the file name (a multiple of 3,600 s).
    pub hour: Tick,
}

/// Parses a key of the backfill layout; `None` for any other key, and for a name that is not
/// on a whole hour (one spelling per hour).
pub fn parse_backfill_key(key: &str) -> Option<BackfillKey> {
    let (source, hour) = parse_partitioned(key.strip_prefix(BACKFILL_PREFIX)?)?;
    (hour.unix().rem_euclid(HOUR) == 0).then_some(BackfillKey { source, hour })
}

/// `source={source}/date={YYYY-MM-DD}/{YYYYMMDDTHHMMSSZ}.json`, the layout under `raw/` and
/// `backfill/`, taken apart.
fn parse_partitioned(rest: &str) -> Option<(SourceName, Tick)> {
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
    Some((source, tick))
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
    fn backfill_keys_round_trip_one_spelling_per_hour() {
        let source = SourceName::new("coinbase").unwrap();
        let hour = Tick::parse("2026-12-07T13:00:00Z").unwrap();
        let key = backfill_key(&source, hour);
        assert_eq!(
            key,
            "backfill/source=coinbase/date=2026-12-07/20261207T130000Z.json"
        );
        assert_eq!(
            backfill_key(&source, hour.add_secs(59 * 60)),
            key,
            "any minute of the hour"
        );
        let parsed = parse_backfill_key(&key).unwrap();
        assert!(key.starts_with(&backfill_source_prefix(&parsed.source)));
        assert_eq!((parsed.source, parsed.hour), (source, hour));
        for key in [
            "backfill/source=coinbase/date=2026-12-07/20261207T130100Z.json",
            "backfill/source=coinbase/date=2026-12-08/20261207T130000Z.json",
            "raw/source=coinbase/date=2026-12-07/20261207T130000Z.json",
            "backfill/coinbase/2026-12-07/20261207T130000Z.json",
        ] {
            assert_eq!(parse_backfill_key(key), None, "{key}");
        }
        assert_eq!(parse_raw_key(&key), None);
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
