//! Alert rules and where notifications go: the `[alerts]` table of the config, checked.

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::model::Measure;

/// The `[alerts]` table: rules, and where their events are delivered.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertConfig {
    /// The rules, in file order; names are unique.
    pub rules: Vec<Rule>,
    /// Webhooks every event is posted to.
    pub webhooks: Vec<Webhook>,
    /// An SNS topic every event is published to (on AWS).
    pub sns_topic_arn: Option<String>,
    /// Attempts per (event, sink) before its delivery is given up.
    pub delivery_attempts: u32,
}

impl Default for AlertConfig {
    fn default() -> Self {
        AlertConfig {
            rules: Vec::new(),
            webhooks: Vec::new(),
            sns_topic_arn: None,
            delivery_attempts: DEFAULT_DELIVERY_ATTEMPTS,
        }
    }
}

/// Attempts per (event, sink) when the config does not say: ten rounds, about ten minutes at
/// one transform a minute.
pub const DEFAULT_DELIVERY_ATTEMPTS: u32 = 10;
/// The largest webhook body when the config does not say (1 MiB).
pub const DEFAULT_WEBHOOK_MAX_BODY_BYTES: usize = 1 << 20;

/// One rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// Its name: lowercase letters, digits, `-` and `_`; part of every event's key.
    pub name: String,
    /// What it checks.
    pub kind: RuleKind,
    /// The sources it watches (`*` wildcards).
    pub source: Pattern,
    /// The pairs it watches (`*` wildcards).
    pub pair: Pattern,
    /// After firing, the same series does not fire again for this long.
    pub cooldown_minutes: u32,
}

/// What a rule checks.
#[derive(Debug, Clone, PartialEq)]
pub enum RuleKind {
    /// The value at the tick is above `factor` × its mean over the `window_minutes` before it.
    Spike {
        /// Price or volume.
        measure: Measure,
        /// The multiple of the mean (3 by default).
        factor: f64,
        /// The trailing window, minutes (60 by default).
        window_minutes: u32,
    },
    /// The price is above `above` or below `below`.
    Threshold {
        /// Fires when the price is above this.
        above: Option<f64>,
        /// Fires when the price is below this.
        below: Option<f64>,
    },
    /// The price moved more than `pct` % (either way) over the last `window_minutes`.
    Change {
        /// The move, percent.
        pct: f64,
        /// Minutes back to compare with.
        window_minutes: u32,
    },
    /// The spread of a pair across sources is above `bps` basis points.
    Spread {
        /// The spread, basis points.
        bps: f64,
    },
    /// A source has stored no snapshot for `minutes`.
    Stale {
        /// Minutes without a snapshot.
        minutes: u32,
    },
}

impl RuleKind {
    /// The kind's name in the config.
    pub fn as_str(&self) -> &'static str {
        match self {
            RuleKind::Spike { .. } => "spike",
            RuleKind::Threshold { .. } => "threshold",
            RuleKind::Change { .. } => "change",
            RuleKind::Spread { .. } => "spread",
            RuleKind::Stale { .. } => "stale",
        }
    }
}

/// A name pattern: `*` matches any run of characters; anything else matches itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern(String);

impl Pattern {
    /// A pattern matching everything.
    pub fn any() -> Self {
        Pattern("*".into())
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `name` matches.
    pub fn matches(&self, name: &str) -> bool {
        let mut parts = self.0.split('*');
        let first = parts.next().unwrap_or("");
        let Some(mut rest) = name.strip_prefix(first) else {
            return false;
        };
        let parts: Vec<&str> = parts.collect();
        let Some((last, middle)) = parts.split_last() else {
            return rest.is_empty(); // no `*`: an exact match
        };
        for part in middle {
            match rest.find(part) {
                Some(i) => rest = &rest[i + part.len()..],
                None => return false,
            }
        }
        rest.len() >= last.len() && rest.ends_with(last)
    }
}

/// A webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    /// Where to POST (http or https).
    pub url: String,
    /// The environment variable holding the HMAC-SHA256 secret, if the body is signed.
    pub secret_env: Option<String>,
    /// The body's shape.
    pub format: WebhookFormat,
    /// How long one attempt may take.
    pub timeout_secs: u64,
    /// The largest body posted: more events are split into several deliveries.
    pub max_body_bytes: usize,
}

/// A webhook body's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookFormat {
    /// The events as JSON: `{"events": [...]}`.
    Json,
    /// A Slack-compatible message: `{"text": "..."}`.
    Slack,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAlerts {
    #[serde(default)]
    rules: Vec<RawRule>,
    #[serde(default)]
    webhooks: Vec<RawWebhook>,
    #[serde(default)]
    sns_topic_arn: Option<String>,
    #[serde(default)]
    delivery_attempts: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    name: String,
    kind: String,
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    pair: Option<String>,
    #[serde(default)]
    measure: Option<String>,
    #[serde(default)]
    factor: Option<f64>,
    #[serde(default)]
    window_minutes: Option<u32>,
    #[serde(default)]
    above: Option<f64>,
    #[serde(default)]
    below: Option<f64>,
    #[serde(default)]
    pct: Option<f64>,
    #[serde(default)]
    bps: Option<f64>,
    #[serde(default)]
    minutes: Option<u32>,
    #[serde(default)]
    cooldown_minutes: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWebhook {
    url: String,
    #[serde(default)]
    secret_env: Option<String>,
    #[serde(default)]
    format: Option<String>,
    #[serde(default)]
    timeout_secs: Option<u64>,
    #[serde(default)]
    max_body_bytes: Option<usize>,
}

/// The longest window a rule may look back: the window the transform keeps.
const MAX_MINUTES: u32 = crate::engine::WINDOW_MINUTES;
/// A rule's cooldown when it does not set one.
pub const DEFAULT_COOLDOWN_MINUTES: u32 = 30;

impl AlertConfig {
    /// Reads the `[alerts]` table of a config; `None` (no table) is no rules. Every error
    /// names the rule or webhook it is about.
    pub fn from_toml(value: Option<&toml::Value>) -> Result<Self> {
        let Some(value) = value else {
            return Ok(AlertConfig::default());
        };
        let raw: RawAlerts = value
            .clone()
            .try_into()
            .map_err(|e: toml::de::Error| Error::Config(format!("[alerts]: {}", e.message())))?;
        let mut rules: Vec<Rule> = Vec::with_capacity(raw.rules.len());
        for (i, r) in raw.rules.into_iter().enumerate() {
            let rule = Rule::from_raw(r)
                .map_err(|e| Error::Config(format!("[[alerts.rules]] #{}: {e}", i + 1)))?;
            if rules.iter().any(|x| x.name == rule.name) {
                return Err(Error::Config(format!(
                    "alert rule {:?}: the name is used twice",
                    rule.name
                )));
            }
            rules.push(rule);
        }
        let webhooks = raw
            .webhooks
            .into_iter()
            .enumerate()
            .map(|(i, w)| {
                Webhook::from_raw(w)
                    .map_err(|e| Error::Config(format!("[[alerts.webhooks]] #{}: {e}", i + 1)))
            })
            .collect::<Result<Vec<_>>>()?;
        if let Some(arn) = &raw.sns_topic_arn
            && !arn.starts_with("arn:aws")
        {
            return Err(Error::Config(format!(
                "[alerts] sns_topic_arn {arn:?} is not an SNS topic ARN"
            )));
        }
        let delivery_attempts = raw.delivery_attempts.unwrap_or(DEFAULT_DELIVERY_ATTEMPTS);
        if !(1..=10_000).contains(&delivery_attempts) {
            return Err(Error::Config(format!(
                "[alerts] delivery_attempts = {delivery_attempts} is outside 1..=10000"
            )));
        }
        Ok(AlertConfig {
            rules,
            webhooks,
            sns_topic_arn: raw.sns_topic_arn,
            delivery_attempts,
        })
    }

    /// Whether there is anything to evaluate.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

impl Rule {
    /// What [`Rule::is_valid_name`] accepts, as a regular expression (for API documents).
    pub const NAME_PATTERN: &'static str = "^[a-z0-9_-]{1,64}$";

    /// Whether `name` can name a rule: 1 to 64 lowercase letters, digits, '-' or '_'.
    pub fn is_valid_name(name: &str) -> bool {
        (1..=64).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
    }

    fn from_raw(r: RawRule) -> std::result::Result<Rule, String> {
        let name = r.name;
        let named = |what: String| format!("alert rule {name:?}: {what}");
        if !Rule::is_valid_name(&name) {
            return Err(named(
                "a name is 1 to 64 lowercase letters, digits, '-' or '_'".into(),
            ));
        }
        let minutes = |field: &str, v: Option<u32>, default: Option<u32>| match v.or(default) {
            Some(m) if (1..=MAX_MINUTES).contains(&m) => Ok(m),
            Some(m) => Err(named(format!("{field} = {m} is outside 1..={MAX_MINUTES}"))),
            None => Err(named(format!("kind {:?} needs {field}", r.kind))),
        };
        let positive = |field: &str, v: Option<f64>, default: Option<f64>| match v.or(default) {
            Some(x) if x.is_finite() && x > 0.0 => Ok(x),
            Some(x) => Err(named(format!("{field} = {x} must be a positive number"))),
            None => Err(named(format!("kind {:?} needs {field}", r.kind))),
        };
        // Which fields each kind reads; any other set field is a mistake worth naming.
        let (kind, allowed): (RuleKind, &[&str]) = match r.kind.as_str() {
            "spike" => {
                let measure = match r.measure.as_deref() {
                    None | Some("price") => Measure::Price,
                    Some("volume") => Measure::Volume,
                    Some(m) => {
                        return Err(named(format!(
                            "measure {m:?} is not one of \"price\", \"volume\""
                        )));
                    }
                };
                let factor = positive("factor", r.factor, Some(3.0))?;
                let window_minutes = minutes("window_minutes", r.window_minutes, Some(60))?;
                (
                    RuleKind::Spike {
                        measure,
                        factor,
                        window_minutes,
                    },
                    &["measure", "factor", "window_minutes"],
                )
            }
            "threshold" => {
                if r.above.is_none() && r.below.is_none() {
                    return Err(named(
                        "kind \"threshold\" needs above, below or both".into(),
                    ));
                }
                let above = r
                    .above
                    .map(|a| positive("above", Some(a), None))
                    .transpose()?;
                let below = r
                    .below
                    .map(|b| positive("below", Some(b), None))
                    .transpose()?;
                (RuleKind::Threshold { above, below }, &["above", "below"])
            }
            "change" => (
                RuleKind::Change {
                    pct: positive("pct", r.pct, None)?,
                    window_minutes: minutes("window_minutes", r.window_minutes, Some(60))?,
                },
                &["pct", "window_minutes"],
            ),
            "spread" => (
                RuleKind::Spread {
                    bps: positive("bps", r.bps, None)?,
                },
                &["bps"],
            ),
            "stale" => (
                RuleKind::Stale {
                    minutes: minutes("minutes", r.minutes, None)?,
                },
                &["minutes"],
            ),
            other => {
                return Err(named(format!(
                    "kind {other:?} is not one of spike, threshold, change, spread, stale"
                )));
            }
        };
        let set = [
            ("measure", r.measure.is_some()),
            ("factor", r.factor.is_some()),
            ("window_minutes", r.window_minutes.is_some()),
            ("above", r.above.is_some()),
            ("below", r.below.is_some()),
            ("pct", r.pct.is_some()),
            ("bps", r.bps.is_some()),
            ("minutes", r.minutes.is_some()),
        ];
        if let Some((field, _)) = set.iter().find(|(f, s)| *s && !allowed.contains(f)) {
            return Err(named(format!(
                "{field} does not apply to kind {:?}",
                kind.as_str()
            )));
        }
        let pattern = |field: &str, v: Option<String>| -> std::result::Result<Pattern, String> {
            let p = v.unwrap_or_else(|| "*".into());
            if p.is_empty()
                || p.len() > 64
                || !p
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_*".contains(&b))
            {
                return Err(named(format!(
                    "{field} pattern {p:?}: letters, digits, '-', '_' and '*' only"
                )));
            }
            Ok(Pattern(p))
        };
        let source = pattern("source", r.source)?;
        let pair = pattern("pair", r.pair)?;
        if matches!(kind, RuleKind::Stale { .. }) && pair.as_str() != "*" {
            return Err(named(
                "kind \"stale\" watches sources; it takes no pair".into(),
            ));
        }
        let cooldown_minutes = r.cooldown_minutes.unwrap_or(DEFAULT_COOLDOWN_MINUTES);
        if cooldown_minutes > MAX_MINUTES {
            return Err(named(format!(
                "cooldown_minutes = {cooldown_minutes} is above {MAX_MINUTES}"
            )));
        }
        Ok(Rule {
            name,
            kind,
            source,
            pair,
            cooldown_minutes,
        })
    }
}

impl Webhook {
    fn from_raw(w: RawWebhook) -> std::result::Result<Webhook, String> {
        let url = w.url;
        if !(url.starts_with("http://") || url.starts_with("https://")) || url.len() > 2048 {
            return Err(format!("webhook url {url:?} is not an http(s) URL"));
        }
        let format = match w.format.as_deref() {
            None | Some("json") => WebhookFormat::Json,
            Some("slack") => WebhookFormat::Slack,
            Some(f) => return Err(format!("webhook format {f:?} is not \"json\" or \"slack\"")),
        };
        if let Some(env) = &w.secret_env
            && (env.is_empty() || !env.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
        {
            return Err(format!(
                "secret_env {env:?} is not an environment variable name"
            ));
        }
        let timeout_secs = w.timeout_secs.unwrap_or(5);
        if !(1..=60).contains(&timeout_secs) {
            return Err(format!("timeout_secs = {timeout_secs} is outside 1..=60"));
        }
        let max_body_bytes = w.max_body_bytes.unwrap_or(DEFAULT_WEBHOOK_MAX_BODY_BYTES);
        if !(1024..=16 << 20).contains(&max_body_bytes) {
            return Err(format!(
                "max_body_bytes = {max_body_bytes} is outside 1024..=16777216"
            ));
        }
        Ok(Webhook {
            url,
            secret_env: w.secret_env,
            format,
            timeout_secs,
            max_body_bytes,
        })
    }
}

#[cfg(test)]
mod tests;
