//! [`Settings`]: what a function reads from its environment.

use cryptomon_core::config::Config;
use cryptomon_core::keys::validate_key;
use cryptomon_core::secrets::Secrets;
use cryptomon_core::{S3Location, S3Store, StoreExt};

use crate::error::HandlerError;
use crate::parameters::ParameterStore;

/// The environment variable naming the SSM path whose parameters are the function's secrets.
pub const SECRETS_PATH_ENV: &str = "CRYPTOMON_SECRETS_PATH";

/// Where the store is, where the config comes from and where the secrets are, as set in the
/// function's environment:
///
/// | variable | meaning |
/// |---|---|
/// | `CRYPTOMON_BUCKET` | the bucket (required) |
/// | `CRYPTOMON_PREFIX` | the key prefix inside it (default: none) |
/// | `CRYPTOMON_CONFIG` | the config: TOML text, `ssm:<parameter name>` (e.g. `ssm:/cryptomon/prod/config`, a SecureString parameter), or the key of a TOML object in the store (default: the built-in config) |
/// | `CRYPTOMON_SECRETS_PATH` | an SSM path (e.g. `/cryptomon/prod/`) whose parameters are the secrets that `api_key_env` and `secret_env` name, each by the last segment of its name (default: none, so they name environment variables) |
///
/// The endpoint, region and credentials come from the standard AWS environment. The collector
/// and transformer read the config and the secrets once, at cold start; the api function needs
/// neither.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The store's bucket and prefix.
    pub location: S3Location,
    /// Where the config is.
    pub config: ConfigSource,
    /// The SSM path holding the secrets, if any.
    pub secrets_path: Option<String>,
}

/// The exchanges' config under the config `text` (`CRYPTOMON_CONFIG`): the built-in default
/// without one, `None` for the demo market (`demo = true`, which [`crate::sources::from_config`]
/// reads), or the parsed config. A text that does not parse is an error naming why.
pub fn exchange_config(text: Option<&str>) -> Result<Option<Config>, HandlerError> {
    let Some(text) = text else {
        return Ok(Some(Config::default()));
    };
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        HandlerError::non_retryable(format!(
            "CRYPTOMON_CONFIG is not valid TOML: {}",
            e.message()
        ))
    })?;
    if table.contains_key("demo") {
        return Ok(None);
    }
    Config::from_toml_str(text)
        .map(Some)
        .map_err(|e| HandlerError::non_retryable(format!("CRYPTOMON_CONFIG: {e}")))
}

/// How far ahead of the clock a snapshot's tick may be under the config `text`: its
/// `max_clock_skew_secs`, or the default for no config and for the demo market.
pub fn max_clock_skew(text: Option<&str>) -> Result<std::time::Duration, HandlerError> {
    // Without a text the built-in default's skew is the pipeline's default anyway.
    let config = match text {
        None => None,
        Some(_) => exchange_config(text)?,
    };
    Ok(
        config.map_or(cryptomon_core::pipeline::DEFAULT_MAX_CLOCK_SKEW, |c| {
            std::time::Duration::from_secs(u64::from(c.max_clock_skew_secs))
        }),
    )
}

/// Where the config text comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigSource {
    /// None given: the built-in default.
    Default,
    /// TOML text in the variable itself.
    Inline(String),
    /// The key of a TOML object in the store (relative to the prefix, like every store key).
    Key(String),
    /// The name of an SSM parameter holding the TOML text.
    Parameter(String),
}

/// The prefix of a `CRYPTOMON_CONFIG` naming an SSM parameter.
const PARAMETER_PREFIX: &str = "ssm:";

impl ConfigSource {
    /// Reads `CRYPTOMON_CONFIG`'s value: an SSM parameter after `ssm:`, TOML text if it holds
    /// a `=`, `[` or a line break (a key never needs one), else a store key.
    pub fn parse(value: &str) -> Result<Self, HandlerError> {
        let value = value.trim();
        if value.is_empty() {
            return Ok(ConfigSource::Default);
        }
        if let Some(name) = value.strip_prefix(PARAMETER_PREFIX) {
            let name = name.trim();
            if name.is_empty() || name.contains(char::is_whitespace) {
                return Err(HandlerError::non_retryable(format!(
                    "CRYPTOMON_CONFIG = {value:?}: `ssm:` must be followed by a parameter name, \
                     such as ssm:/cryptomon/prod/config"
                )));
            }
            return Ok(ConfigSource::Parameter(name.to_owned()));
        }
        if value.contains(['=', '[', '\n']) {
            return Ok(ConfigSource::Inline(value.to_owned()));
        }
        validate_key(value).map_err(|e| {
            HandlerError::non_retryable(format!(
                "CRYPTOMON_CONFIG is neither TOML text nor a usable store key: {e}"
            ))
        })?;
        Ok(ConfigSource::Key(value.to_owned()))
    }

    /// The config text: `None` for the default. A key is read from `store`, a parameter from
    /// `parameters`.
    pub async fn load(
        &self,
        store: &dyn cryptomon_core::Store,
        parameters: &ParameterStore,
    ) -> Result<Option<String>, HandlerError> {
        match self {
            ConfigSource::Default => Ok(None),
            ConfigSource::Inline(text) => Ok(Some(text.clone())),
            ConfigSource::Parameter(name) => {
                let text = parameters.parameter(name).await;
                text.map(Some).map_err(|e| e.context("CRYPTOMON_CONFIG"))
            }
            ConfigSource::Key(key) => {
                let object = store.get(key).await?.ok_or_else(|| {
                    HandlerError::non_retryable(format!(
                        "CRYPTOMON_CONFIG names {key:?}, which {store} does not hold"
                    ))
                })?;
                String::from_utf8(object.body.to_vec())
                    .map(Some)
                    .map_err(|_| {
                        HandlerError::non_retryable(format!("config {key:?} is not UTF-8"))
                    })
            }
        }
    }
}

impl Settings {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, HandlerError> {
        Settings::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the variables through `lookup` (tests pass a map).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, HandlerError> {
        let bucket = lookup("CRYPTOMON_BUCKET")
            .filter(|b| !b.trim().is_empty())
            .ok_or_else(|| {
                HandlerError::non_retryable(
                    "CRYPTOMON_BUCKET is not set: the function needs the bucket of its store",
                )
            })?;
        let prefix = lookup("CRYPTOMON_PREFIX").unwrap_or_default();
        let location = S3Location::new(bucket.trim(), prefix.trim()).map_err(|e| {
            HandlerError::non_retryable(format!("CRYPTOMON_BUCKET/CRYPTOMON_PREFIX: {e}"))
        })?;
        let config = ConfigSource::parse(&lookup("CRYPTOMON_CONFIG").unwrap_or_default())?;
        let secrets_path = lookup(SECRETS_PATH_ENV)
            .map(|p| p.trim().to_owned())
            .filter(|p| !p.is_empty());
        if let Some(path) = &secrets_path
            && (!path.starts_with('/') || path.contains(char::is_whitespace))
        {
            return Err(HandlerError::non_retryable(format!(
                "{SECRETS_PATH_ENV} = {path:?} is not an SSM parameter path, which starts with \
                 `/`, such as /cryptomon/prod/"
            )));
        }
        Ok(Settings {
            location,
            config,
            secrets_path,
        })
    }

    /// The secrets `api_key_env` and `secret_env` name: the parameters under the secrets path
    /// read from `parameters`, or, without a path, none (so the names are environment
    /// variables), with no call to SSM.
    pub async fn secrets(&self, parameters: &ParameterStore) -> Result<Secrets, HandlerError> {
        let Some(path) = &self.secrets_path else {
            return Ok(Secrets::default());
        };
        let secrets = parameters
            .secrets_under(path)
            .await
            .map_err(|e| e.context(SECRETS_PATH_ENV))?;
        tracing::info!(
            path = %path,
            names = ?secrets.names().collect::<Vec<_>>(),
            "secrets read from SSM"
        );
        Ok(secrets)
    }

    /// The store, configured from `aws`, the function's one AWS configuration (the standard
    /// AWS environment).
    pub fn store(&self, aws: &aws_config::SdkConfig) -> S3Store {
        S3Store::from_sdk_config(aws, self.location.clone())
    }

    /// The bucket and prefix, as the transformer checks notifications against them.
    pub fn bucket_and_prefix(&self) -> (String, String) {
        (
            self.location.bucket().to_owned(),
            self.location.prefix().to_owned(),
        )
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn settings(vars: &[(&str, &str)]) -> Result<Settings, HandlerError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Settings::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn reads_bucket_prefix_and_config() {
        let s = settings(&[
            ("CRYPTOMON_BUCKET", "market-data"),
            ("CRYPTOMON_PREFIX", "prod"),
            ("CRYPTOMON_CONFIG", "config/cryptomon.toml"),
        ])
        .unwrap();
        assert_eq!(s.location.to_string(), "s3://market-data/prod");
        assert_eq!(s.config, ConfigSource::Key("config/cryptomon.toml".into()));

        let s = settings(&[
            ("CRYPTOMON_BUCKET", "market-data"),
            ("CRYPTOMON_CONFIG", "demo = true"),
        ])
        .unwrap();
        assert_eq!(s.location.prefix(), "");
        assert_eq!(s.config, ConfigSource::Inline("demo = true".into()));

        let s = settings(&[("CRYPTOMON_BUCKET", "market-data")]).unwrap();
        assert_eq!(s.config, ConfigSource::Default);
        assert_eq!(s.secrets_path, None);
    }

    #[test]
    fn reads_an_ssm_config_and_a_secrets_path() {
        let s = settings(&[
            ("CRYPTOMON_BUCKET", "market-data"),
            ("CRYPTOMON_CONFIG", " ssm:/cryptomon/prod/config "),
            ("CRYPTOMON_SECRETS_PATH", "/cryptomon/prod/"),
        ])
        .unwrap();
        assert_eq!(
            s.config,
            ConfigSource::Parameter("/cryptomon/prod/config".into())
        );
        assert_eq!(s.secrets_path.as_deref(), Some("/cryptomon/prod/"));
        let s = settings(&[
            ("CRYPTOMON_BUCKET", "market-data"),
            ("CRYPTOMON_SECRETS_PATH", "  "),
        ])
        .unwrap();
        assert_eq!(s.secrets_path, None);
    }

    #[tokio::test]
    async fn without_a_path_the_secrets_are_the_environment_and_ssm_is_not_asked() {
        let s = settings(&[("CRYPTOMON_BUCKET", "market-data")]).unwrap();
        let ssm = wiremock::MockServer::start().await;
        wiremock::Mock::given(wiremock::matchers::any())
            .respond_with(wiremock::ResponseTemplate::new(500))
            .expect(0)
            .mount(&ssm)
            .await;
        let parameters = crate::parameters::tests::store_at(&ssm.uri());
        assert!(s.secrets(&parameters).await.unwrap().is_empty());
    }

    #[test]
    fn bad_settings_name_the_variable() {
        let e = settings(&[]).unwrap_err();
        assert!(e.message().contains("CRYPTOMON_BUCKET"), "{e}");
        assert!(!e.is_retryable());
        let e = settings(&[("CRYPTOMON_BUCKET", "Bad_Bucket")]).unwrap_err();
        assert!(e.message().contains("Bad_Bucket"), "{e}");
        let e = settings(&[
            ("CRYPTOMON_BUCKET", "ok-bucket"),
            ("CRYPTOMON_CONFIG", "../x"),
        ])
        .unwrap_err();
        assert!(e.message().contains("CRYPTOMON_CONFIG"), "{e}");
        for config in ["ssm:", "ssm: /a b"] {
            let e = settings(&[
                ("CRYPTOMON_BUCKET", "ok-bucket"),
                ("CRYPTOMON_CONFIG", config),
            ])
            .unwrap_err();
            assert!(e.message().contains("parameter name"), "{e}");
        }
        let e = settings(&[
            ("CRYPTOMON_BUCKET", "ok-bucket"),
            ("CRYPTOMON_SECRETS_PATH", "cryptomon/prod"),
        ])
        .unwrap_err();
        assert!(e.message().contains("CRYPTOMON_SECRETS_PATH"), "{e}");
    }
}
