//! Sources from the config text: what the collector collects.

use std::sync::Arc;

use cryptomon_core::DynSource;
use cryptomon_core::config::Config;
use cryptomon_core::exchange::build_sources;
use cryptomon_core::secrets::Secrets;
use cryptomon_mock::SyntheticSource;

use crate::error::HandlerError;

/// The sources of a config and the collection interval.
#[derive(Debug)]
pub struct SourceSetup {
    /// The sources to collect, each once per tick.
    pub sources: Vec<DynSource>,
    /// Seconds between ticks.
    pub interval_secs: u32,
}

/// The sources a config names:
///
/// - `None` (no `CRYPTOMON_CONFIG`): the built-in default, BTC, ETH and SOL on four exchanges;
/// - `demo = true` (optionally with `interval_secs`): the synthetic market of `cryptomon
///   --demo`, which needs no network;
/// - any other text: a `cryptomon.toml` (see docs/configuration.md).
///
/// API keys come from `secrets`. A bad config is a [`HandlerError`] that retrying will not fix,
/// naming what is wrong.
pub fn from_config(text: Option<&str>, secrets: &Secrets) -> Result<SourceSetup, HandlerError> {
    let config_error =
        |e: cryptomon_core::Error| HandlerError::non_retryable(format!("CRYPTOMON_CONFIG: {e}"));
    let Some(text) = text else {
        let config = Config::default();
        return Ok(SourceSetup {
            sources: build_sources(&config, secrets).map_err(config_error)?,
            interval_secs: config.interval_secs,
        });
    };
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        HandlerError::non_retryable(format!(
            "CRYPTOMON_CONFIG is not valid TOML: {}",
            e.message()
        ))
    })?;
    if let Some(demo) = table.get("demo") {
        return demo_setup(demo, &table);
    }
    let config = Config::from_toml_str(text).map_err(config_error)?;
    Ok(SourceSetup {
        sources: build_sources(&config, secrets).map_err(config_error)?,
        interval_secs: config.interval_secs,
    })
}

fn demo_setup(demo: &toml::Value, table: &toml::Table) -> Result<SourceSetup, HandlerError> {
    if demo.as_bool() != Some(true) {
        return Err(HandlerError::non_retryable(format!(
            "CRYPTOMON_CONFIG: demo = {demo}: only `demo = true` is meaningful; remove the key \
             to collect the configured exchanges"
        )));
    }
    if let Some(other) = table
        .keys()
        .find(|k| !matches!(k.as_str(), "demo" | "interval_secs"))
    {
        return Err(HandlerError::non_retryable(format!(
            "CRYPTOMON_CONFIG: {other:?} cannot be combined with demo = true (only \
             interval_secs can)"
        )));
    }
    let interval_secs = match table.get("interval_secs") {
        None => 60,
        Some(v) => v
            .as_integer()
            .filter(|s| (1..=86_400).contains(s))
            .map(|s| s as u32)
            .ok_or_else(|| {
                HandlerError::non_retryable(format!(
                    "CRYPTOMON_CONFIG: interval_secs = {v}: must be a whole number of seconds \
                     between 1 and 86400"
                ))
            })?,
    };
    Ok(SourceSetup {
        sources: vec![Arc::new(SyntheticSource::demo())],
        interval_secs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_is_the_synthetic_market() {
        let setup = from_config(Some("demo = true"), &Secrets::default()).unwrap();
        assert_eq!(setup.sources.len(), 1);
        assert_eq!(setup.sources[0].name().as_str(), "demo");
        assert_eq!(setup.interval_secs, 60);
        let setup = from_config(
            Some("demo = true\ninterval_secs = 300"),
            &Secrets::default(),
        )
        .unwrap();
        assert_eq!(setup.interval_secs, 300);
    }

    #[test]
    fn default_and_files_name_their_exchanges() {
        let setup = from_config(None, &Secrets::default()).unwrap();
        let names: Vec<&str> = setup.sources.iter().map(|s| s.name().as_str()).collect();
        assert_eq!(names.len(), 4, "{names:?}");
        assert!(names.contains(&"kraken"), "{names:?}");
        let setup = from_config(
            Some("interval_secs = 120\n[[sources]]\nkind = \"kraken\"\npairs = [\"BTC-USD\"]\n"),
            &Secrets::default(),
        )
        .unwrap();
        assert_eq!(setup.interval_secs, 120);
        assert_eq!(setup.sources[0].name().as_str(), "kraken");
    }

    #[test]
    fn bad_configs_say_what_is_wrong() {
        for (text, needle) in [
            ("demo = false", "only `demo = true`"),
            (
                "demo = true\n[[sources]]\nkind = \"kraken\"",
                "\"sources\" cannot be combined",
            ),
            ("demo = true\ninterval_secs = 0", "interval_secs = 0"),
            ("[[sources]]\nkind = \"krakken\"", "krakken"),
            ("this is not toml", "not valid TOML"),
        ] {
            let err = from_config(Some(text), &Secrets::default()).unwrap_err();
            assert!(!err.is_retryable());
            assert!(err.message().contains(needle), "{text:?}: {err}");
        }
    }
}
