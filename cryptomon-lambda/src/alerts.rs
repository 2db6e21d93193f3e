//! Alerts on Lambda: the config's `[alerts]` rules, its webhooks, and an SNS topic.
//!
//! The topic comes from the config's `sns_topic_arn` or, as the SAM template wires it, from
//! `CRYPTOMON_ALERT_TOPIC_ARN`. A delivery publishes one message: a subject line and the events
//! as text, then as JSON (email subscribers read the text; programs subscribed to the topic
//! parse the JSON after the blank line), with the delivery id as the message attribute
//! `cryptomon_delivery`. More events than one message holds go in several.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use cryptomon_core::alerting::{AlertConfig, AlertEvent, DynNotifier, Notifier, webhook_notifiers};
use cryptomon_core::pipeline::Alerting;
use cryptomon_core::secrets::Secrets;
use cryptomon_core::{Error, Result};

use crate::error::HandlerError;

/// The environment variable naming the SNS topic alerts are published to.
pub const TOPIC_ENV: &str = "CRYPTOMON_ALERT_TOPIC_ARN";
/// SNS subjects are at most 100 ASCII characters.
const MAX_SUBJECT: usize = 100;
/// SNS's limit on a whole message: subject, body and attributes.
pub const MAX_MESSAGE_BYTES: usize = 262_144;
/// The message attribute holding the delivery id.
const DELIVERY_ATTRIBUTE: &str = "cryptomon_delivery";
/// How long one publish may take.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(10);
/// The bytes a delivery id's attribute adds: its name, its type (`String`) and the id.
const DELIVERY_ATTRIBUTE_BYTES: usize = DELIVERY_ATTRIBUTE.len() + "String".len() + 32;

/// A [`Notifier`] publishing to an SNS topic.
#[derive(Debug, Clone)]
pub struct SnsNotifier {
    client: aws_sdk_sns::Client,
    topic_arn: String,
}

impl SnsNotifier {
    /// A notifier publishing to `topic_arn` with `client`.
    pub fn new(client: aws_sdk_sns::Client, topic_arn: impl Into<String>) -> Self {
        SnsNotifier {
            client,
            topic_arn: topic_arn.into(),
        }
    }

    /// The subject and message for `events`.
    pub fn message(events: &[AlertEvent]) -> (String, String) {
        let subject = match events {
            [one] => one.text(),
            _ => format!("[cryptomon] {} alert events", events.len()),
        };
        let subject: String = subject
            .chars()
            .map(|c| {
                if c.is_ascii() && !c.is_ascii_control() {
                    c
                } else {
                    '?'
                }
            })
            .take(MAX_SUBJECT)
            .collect();
        let text: Vec<String> = events.iter().map(AlertEvent::text).collect();
        let json = serde_json::to_string(events).unwrap_or_default();
        (subject, format!("{}\n\n{json}", text.join("\n")))
    }
}

#[async_trait]
impl Notifier for SnsNotifier {
    fn sink(&self) -> String {
        format!("sns:{}", self.topic_arn)
    }

    fn timeout(&self) -> Duration {
        PUBLISH_TIMEOUT
    }

    fn max_message_bytes(&self) -> usize {
        MAX_MESSAGE_BYTES
    }

    fn message_bytes(&self, events: &[AlertEvent]) -> usize {
        let (subject, message) = Self::message(events);
        subject.len() + message.len() + DELIVERY_ATTRIBUTE_BYTES
    }

    async fn notify(&self, delivery: &str, events: &[AlertEvent]) -> Result<()> {
        let (subject, message) = Self::message(events);
        let attribute = aws_sdk_sns::types::MessageAttributeValue::builder()
            .data_type("String")
            .string_value(delivery)
            .build()
            .map_err(|e| Error::Delivery {
                sink: self.sink(),
                message: e.to_string(),
            })?;
        self.client
            .publish()
            .topic_arn(&self.topic_arn)
            .subject(subject)
            .message(message)
            .message_attributes(DELIVERY_ATTRIBUTE, attribute)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| Error::Delivery {
                sink: self.sink(),
                message: aws_sdk_sns::error::DisplayErrorContext(&e).to_string(),
            })
    }
}

/// The alert set-up of a function: the rules of `config_text` (the built-in config has none),
/// its webhooks with their signing secrets from `secrets`, and the SNS topic of the config or
/// of `topic_env`, published to with a client configured from `aws` (the function's one AWS
/// configuration). An invalid rule or a missing secret is refused here, at start-up, naming it.
pub fn from_config(
    config_text: Option<&str>,
    topic_env: Option<String>,
    secrets: &Secrets,
    aws: &aws_config::SdkConfig,
) -> std::result::Result<Alerting, HandlerError> {
    // The demo market (`demo = true`) has no rules, as the built-in config has none.
    let alerts = match crate::settings::exchange_config(config_text)? {
        None => AlertConfig::default(),
        Some(config) => AlertConfig::from_toml(config.alerts.as_ref())
            .map_err(|e| HandlerError::non_retryable(format!("config: {e}")))?,
    };
    let mut notifiers: Vec<DynNotifier> = webhook_notifiers(&alerts, secrets)
        .map_err(|e| HandlerError::non_retryable(format!("config: {e}")))?;
    let topic = alerts
        .sns_topic_arn
        .clone()
        .or(topic_env.filter(|t| !t.is_empty()));
    if let Some(arn) = topic {
        notifiers.push(Arc::new(SnsNotifier::new(
            aws_sdk_sns::Client::new(aws),
            arn,
        )));
    }
    Ok(Alerting::new(alerts, notifiers))
}

#[cfg(test)]
mod tests {
    use super::*;
    use cryptomon_core::Tick;
    use cryptomon_core::alerting::EventStatus;

    /// An AWS configuration that no test sends a request with.
    fn no_aws() -> aws_config::SdkConfig {
        aws_config::SdkConfig::builder().build()
    }

    fn event(rule: &str) -> AlertEvent {
        AlertEvent {
            schema: "cryptomon.alert/v1".into(),
            status: EventStatus::Fired,
            rule: rule.into(),
            kind: "spike".into(),
            source: Some(cryptomon_core::SourceName::new("kraken").unwrap()),
            pair: Some(cryptomon_core::Pair::new("BTC-USD").unwrap()),
            measure: Some(cryptomon_core::Measure::Volume),
            value: 40.0,
            reference: 10.0,
            ratio: 4.0,
            tick: Tick::parse("2026-11-27T12:00:00Z").unwrap(),
            fired_at: Tick::parse("2026-11-27T12:00:00Z").unwrap(),
        }
    }

    #[test]
    fn messages_have_a_short_ascii_subject_then_text_and_json() {
        let (subject, message) = SnsNotifier::message(&[event("volume-spike")]);
        assert!(subject.starts_with("[cryptomon] volume-spike fired: kraken BTC-USD volume"));
        assert!(subject.len() <= MAX_SUBJECT);
        let (first, json) = message.split_once("\n\n").unwrap();
        assert_eq!(first, event("volume-spike").text());
        let parsed: Vec<AlertEvent> = serde_json::from_str(json).unwrap();
        assert_eq!(parsed, [event("volume-spike")]);

        let (subject, _) = SnsNotifier::message(&[event("a"), event("b")]);
        assert_eq!(subject, "[cryptomon] 2 alert events");
        let long = "x".repeat(200);
        let (subject, _) = SnsNotifier::message(&[event(&long)]);
        assert_eq!(subject.len(), MAX_SUBJECT);
    }

    #[test]
    fn many_events_split_into_messages_within_the_sns_limit() {
        let config = aws_sdk_sns::Config::builder()
            .behavior_version(aws_sdk_sns::config::BehaviorVersion::latest())
            .region(aws_sdk_sns::config::Region::new("eu-west-1"))
            .build();
        let sns = SnsNotifier::new(aws_sdk_sns::Client::from_conf(config), "arn:aws:sns:x");
        // About 1.5 MB of events as text and JSON.
        let events: Vec<AlertEvent> = (0..4000).map(|i| event(&format!("rule-{i}"))).collect();
        assert!(sns.message_bytes(&events) > 3 * MAX_MESSAGE_BYTES);
        let split = cryptomon_core::alerting::batches::split(&events, MAX_MESSAGE_BYTES, |b| {
            sns.message_bytes(b)
        });
        assert!(split.too_large.is_empty());
        assert!(split.batches.len() >= 4, "{}", split.batches.len());
        let mut covered = 0;
        for range in &split.batches {
            assert_eq!(range.start, covered);
            let (subject, message) = SnsNotifier::message(&events[range.clone()]);
            let whole = subject.len() + message.len() + DELIVERY_ATTRIBUTE_BYTES;
            assert!(whole <= MAX_MESSAGE_BYTES, "{range:?}: {whole} bytes");
            covered = range.end;
        }
        assert_eq!(covered, events.len());
    }

    #[tokio::test]
    async fn an_invalid_rule_is_refused_naming_it() {
        let text = r#"
[[sources]]
kind = "coinbase"

[[alerts.rules]]
name = "too-eager"
kind = "spike"
measure = "volume"
factor = -1.0
"#;
        let err = from_config(Some(text), None, &Secrets::default(), &no_aws()).unwrap_err();
        assert!(!err.is_retryable());
        assert!(err.message().contains("too-eager"), "{}", err.message());
    }

    /// The demo config is the collector's synthetic market: the transformer starts with it,
    /// with no rules, rather than refusing `demo` as an unknown field.
    #[tokio::test]
    async fn the_demo_config_means_no_rules() {
        let alerting =
            from_config(Some("demo = true"), None, &Secrets::default(), &no_aws()).unwrap();
        assert!(alerting.config.rules.is_empty());
    }

    #[tokio::test]
    async fn no_config_means_no_rules_and_no_sinks() {
        let alerting = from_config(None, None, &Secrets::default(), &no_aws()).unwrap();
        assert!(alerting.config.rules.is_empty());
        assert!(alerting.notifiers.is_empty());
    }
}
