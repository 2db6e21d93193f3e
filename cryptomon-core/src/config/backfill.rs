//! The `[backfill]` table: whether `serve` and the transformer backfill an empty window from
//! the exchanges' candles when they start, and how many hours.

use serde::Deserialize;

use crate::error::{Error, Result};

/// Hours backfilled when the table does not say: the window's day.
pub const DEFAULT_BACKFILL_HOURS: u32 = 24;

/// The most hours one backfill may ask for: a year.
pub const MAX_BACKFILL_HOURS: u32 = 8784;

/// The `[backfill]` table, validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackfillConfig {
    /// Backfill at start-up when the window is empty (`on_empty`, default true).
    pub on_empty: bool,
    /// The whole UTC hours before now to backfill (`hours`, 1 to [`MAX_BACKFILL_HOURS`],
    /// default [`DEFAULT_BACKFILL_HOURS`]).
    pub hours: u32,
}

impl Default for BackfillConfig {
    fn default() -> Self {
        BackfillConfig {
            on_empty: true,
            hours: DEFAULT_BACKFILL_HOURS,
        }
    }
}

/// The table as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBackfill {
    #[serde(default)]
    on_empty: Option<bool>,
    #[serde(default)]
    hours: Option<i64>,
}

impl RawBackfill {
    /// The table's settings, or why `hours` is out of range.
    pub(super) fn validate(self) -> Result<BackfillConfig> {
        let hours = match self.hours {
            None => DEFAULT_BACKFILL_HOURS,
            Some(h) if (1..=i64::from(MAX_BACKFILL_HOURS)).contains(&h) => h as u32,
            Some(h) => {
                return Err(Error::Config(format!(
                    "backfill.hours = {h}: must be between 1 and {MAX_BACKFILL_HOURS}"
                )));
            }
        };
        Ok(BackfillConfig {
            on_empty: self.on_empty.unwrap_or(true),
            hours,
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    const SOURCE: &str = "[[sources]]\nkind = \"kraken\"\n";

    #[test]
    fn on_by_default_and_can_be_turned_off() {
        let config = Config::from_toml_str(SOURCE).unwrap();
        assert!(config.backfill.on_empty);
        assert_eq!(config.backfill.hours, 24);
        let off = format!("{SOURCE}[backfill]\non_empty = false\nhours = 6\n");
        let config = Config::from_toml_str(&off).unwrap();
        assert_eq!(
            (config.backfill.on_empty, config.backfill.hours),
            (false, 6)
        );
    }

    #[test]
    fn bad_hours_and_unknown_keys_are_refused() {
        for (table, wanted) in [
            ("hours = 0", "backfill.hours = 0"),
            ("hours = 9000", "between 1 and 8784"),
            ("on_emtpy = true", "on_emtpy"),
        ] {
            let text = format!("{SOURCE}[backfill]\n{table}\n");
            let e = Config::from_toml_str(&text).unwrap_err().to_string();
            assert!(e.contains(wanted), "{table}: {e}");
        }
    }
}
