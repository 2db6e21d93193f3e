//! Ticks: the schedule slots snapshots are keyed by.

use std::fmt;

use chrono::{DateTime, TimeZone, Utc};

use crate::error::{Error, Result};

/// One schedule slot: whole seconds since the Unix epoch, UTC.
///
/// A collection at 23:48:00.412 with a 60 s interval belongs to tick 23:48:00. Keys are derived
/// from the tick, never from the wall clock, so a retried collection lands on the same key.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Tick(i64);

/// Seconds in a minute: the contract's sampling step.
pub const MINUTE: i64 = 60;

impl Tick {
    /// A tick at `secs` seconds since the epoch.
    pub const fn from_unix(secs: i64) -> Self {
        Tick(secs)
    }

    /// `at` floored to a multiple of `interval_secs` since the epoch.
    pub fn floor(at: DateTime<Utc>, interval_secs: u32) -> Self {
        let step = i64::from(interval_secs.max(1));
        Tick(at.timestamp().div_euclid(step) * step)
    }

    /// Seconds since the epoch.
    pub const fn unix(self) -> i64 {
        self.0
    }

    /// The tick as a UTC time.
    pub fn to_datetime(self) -> DateTime<Utc> {
        Utc.timestamp_opt(self.0, 0)
            .single()
            .unwrap_or(DateTime::<Utc>::MIN_UTC)
    }

    /// Parses an RFC 3339 time that falls on a whole second.
    pub fn parse(s: &str) -> Result<Self> {
        let t = DateTime::parse_from_rfc3339(s)
            .map_err(|e| Error::Config(format!("invalid time {s:?}: {e}")))?;
        if t.timestamp_subsec_nanos() != 0 {
            return Err(Error::Config(format!(
                "tick {s:?} is not on a whole second"
            )));
        }
        Ok(Tick(t.timestamp()))
    }

    /// This tick moved by `secs` seconds.
    pub const fn add_secs(self, secs: i64) -> Self {
        Tick(self.0.saturating_add(secs))
    }

    /// Refuses a tick more than `max_ahead_secs` after `now`, naming it as `what` (`tick`,
    /// `as_of`) and saying by how much: a tick from a skewed clock or a forged event would
    /// otherwise become the window's `as_of`.
    pub fn check_not_ahead(
        self,
        what: &str,
        now: Tick,
        max_ahead_secs: u64,
    ) -> std::result::Result<(), String> {
        let ahead = self.0.saturating_sub(now.0);
        if ahead <= i64::try_from(max_ahead_secs).unwrap_or(i64::MAX) {
            return Ok(());
        }
        Err(format!(
            "{what} {self} is ahead of the clock: {ahead} s ahead of the clock's {now}; at most \
             {max_ahead_secs} s (max_clock_skew_secs) is accepted"
        ))
    }

    /// The date partition of the contract (`YYYY-MM-DD`).
    pub fn date(self) -> String {
        self.to_datetime().format("%Y-%m-%d").to_string()
    }

    /// The compact form used in raw keys (`YYYYMMDDTHHMMSSZ`).
    pub fn compact(self) -> String {
        self.to_datetime().format("%Y%m%dT%H%M%SZ").to_string()
    }

    /// Parses the compact form (`YYYYMMDDTHHMMSSZ`), exactly as [`Tick::compact`] writes it.
    ///
    /// Only that layout: 16 bytes, each field its full width in digits. chrono's parser took
    /// fields narrower than their width (`T10000Z` read as 10:00:00), and a raw key must have
    /// one spelling per tick, otherwise two objects could hold the same tick (found by the `keys`
    /// fuzz target).
    pub fn parse_compact(s: &str) -> Option<Self> {
        // By hand, not with a format string: every key of a listing goes through here.
        let b = s.as_bytes();
        let digits = |r: std::ops::Range<usize>| -> Option<u32> {
            b[r].iter().try_fold(0u32, |n, &c| {
                c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
            })
        };
        if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
            return None;
        }
        let date = chrono::NaiveDate::from_ymd_opt(
            i32::try_from(digits(0..4)?).ok()?,
            digits(4..6)?,
            digits(6..8)?,
        )?;
        let time = date.and_hms_opt(digits(9..11)?, digits(11..13)?, digits(13..15)?)?;
        Some(Tick(time.and_utc().timestamp()))
    }
}

impl fmt::Display for Tick {
    /// RFC 3339 with `Z`, as in every document of the contract.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_datetime().format("%Y-%m-%dT%H:%M:%SZ"))
    }
}

impl fmt::Debug for Tick {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tick({self})")
    }
}

impl serde::Serialize for Tick {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Tick {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Tick::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floors_to_the_interval() {
        let at = DateTime::parse_from_rfc3339("2026-11-27T23:48:00.412Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(Tick::floor(at, 60).to_string(), "2026-11-27T23:48:00Z");
        assert_eq!(Tick::floor(at, 300).to_string(), "2026-11-27T23:45:00Z");
        assert_eq!(Tick::floor(at, 0).to_string(), "2026-11-27T23:48:00Z");
    }

    #[test]
    fn key_forms_round_trip() {
        let t = Tick::parse("2026-11-27T23:48:00Z").unwrap();
        assert_eq!(t.date(), "2026-11-27");
        assert_eq!(t.compact(), "20261127T234800Z");
        assert_eq!(Tick::parse_compact(&t.compact()), Some(t));
        assert_eq!(Tick::parse_compact("20261127T2348Z"), None);
    }

    #[test]
    fn fractional_ticks_are_refused() {
        assert!(Tick::parse("2026-11-27T23:48:00.5Z").is_err());
        assert!(Tick::parse("yesterday").is_err());
    }

    #[test]
    fn pre_epoch_floors_down() {
        assert_eq!(
            Tick::floor(Utc.timestamp_opt(-1, 0).unwrap(), 60).unix(),
            -60
        );
    }
}
