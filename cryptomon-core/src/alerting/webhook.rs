//! Alert delivery to a webhook: a JSON POST, signed with a timestamp (the Stripe scheme).

use std::time::Duration;

use async_trait::async_trait;
use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha256;

use super::events::{AlertEvent, KeyedAlertEvent};
use super::notifier::{DynNotifier, Notifier};
use super::rules::{Webhook, WebhookFormat};
use crate::error::{Error, Result};
use crate::secrets::Secrets;

/// The header carrying the signature: `t=<unix seconds>,v1=<lowercase hex HMAC-SHA256 of
/// "<t>.<body>">` (see [`signature`]).
pub const SIGNATURE_HEADER: &str = "X-Cryptomon-Signature";
/// The header naming the delivery: the same on every retry of the same events to this webhook.
pub const DELIVERY_HEADER: &str = "X-Cryptomon-Delivery";

/// A [`Notifier`] that POSTs events to a URL.
///
/// The body is `{"events": [...]}` (each event as stored, its `key` added so a receiver can
/// drop repeats), or with [`WebhookFormat::Slack`] `{"text": "..."}`, one line per event.
/// [`DELIVERY_HEADER`] names the delivery; with a secret, [`SIGNATURE_HEADER`] signs the
/// send time with the body. One request per attempt: a 2xx answer is a delivery; anything
/// else (a redirect included: it is never followed, since it would take the body and its
/// signature elsewhere), or no answer within the timeout, is a failed attempt.
#[derive(Clone)]
pub struct WebhookNotifier {
    url: String,
    /// The URL's name in logs and the alert state: [`sink_name`].
    sink: String,
    format: WebhookFormat,
    secret: Option<Vec<u8>>,
    timeout: Duration,
    max_body_bytes: usize,
    client: reqwest::Client,
}

impl WebhookNotifier {
    /// A notifier for `webhook`; the secret its `secret_env` names is read from `secrets` now,
    /// and one that is missing or empty is an error (naming the webhook's [`sink_name`] and the
    /// secret's name, never its value).
    pub fn new(webhook: &Webhook, secrets: &Secrets) -> Result<Self> {
        let secret = match &webhook.secret_env {
            None => None,
            Some(name) => match secrets.get(name) {
                Some(v) if !v.is_empty() => Some(v.into_bytes()),
                _ => {
                    return Err(Error::Config(format!(
                        "webhook {}: secret_env {name} is not set",
                        sink_name(&webhook.url)
                    )));
                }
            },
        };
        Self::with_secret(webhook, secret)
    }

    /// A notifier with an explicit secret.
    pub fn with_secret(webhook: &Webhook, secret: Option<Vec<u8>>) -> Result<Self> {
        let timeout = Duration::from_secs(webhook.timeout_secs);
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("cryptomon/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Config(format!("webhook {}: {e}", sink_name(&webhook.url))))?;
        Ok(WebhookNotifier {
            url: webhook.url.clone(),
            sink: sink_name(&webhook.url),
            format: webhook.format,
            secret,
            timeout,
            max_body_bytes: webhook.max_body_bytes,
            client,
        })
    }

    /// The body for `events`.
    pub fn body(&self, events: &[AlertEvent]) -> Vec<u8> {
        let value = match self.format {
            WebhookFormat::Json => {
                let events: Vec<KeyedAlertEvent> = events.iter().map(Into::into).collect();
                json!({ "events": events })
            }
            WebhookFormat::Slack => {
                let lines: Vec<String> = events.iter().map(AlertEvent::text).collect();
                json!({ "text": lines.join("\n") })
            }
        };
        serde_json::to_vec(&value).unwrap_or_default()
    }

    fn failed(&self, message: String) -> Error {
        Error::Delivery {
            sink: self.sink.clone(),
            message,
        }
    }
}

impl std::fmt::Debug for WebhookNotifier {
    // By hand: the URL and the secret are credentials.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookNotifier")
            .field("sink", &self.sink)
            .field("format", &self.format)
            .field("signed", &self.secret.is_some())
            .field("timeout", &self.timeout)
            .field("max_body_bytes", &self.max_body_bytes)
            .finish_non_exhaustive()
    }
}

/// The [`SIGNATURE_HEADER`] value for `body` sent at `timestamp` (Unix seconds):
/// `t=<timestamp>,v1=<lowercase hex HMAC-SHA256 of "<timestamp>.<body>" under secret>`.
/// Signing the time with the body lets a receiver refuse a captured request replayed later.
pub fn signature(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    // HMAC takes a key of any length.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC accepts any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!(
        "t={timestamp},v1={}",
        hex::encode(mac.finalize().into_bytes())
    )
}

#[async_trait]
impl Notifier for WebhookNotifier {
    fn sink(&self) -> String {
        self.sink.clone()
    }

    fn timeout(&self) -> Duration {
        self.timeout
    }

    fn max_message_bytes(&self) -> usize {
        self.max_body_bytes
    }

    fn message_bytes(&self, events: &[AlertEvent]) -> usize {
        self.body(events).len()
    }

    async fn notify(&self, delivery: &str, events: &[AlertEvent]) -> Result<()> {
        let body = self.body(events);
        let mut request = self
            .client
            .post(&self.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(DELIVERY_HEADER, delivery);
        if let Some(secret) = &self.secret {
            let now = chrono::Utc::now().timestamp();
            request = request.header(SIGNATURE_HEADER, signature(secret, now, &body));
        }
        match request.body(body).send().await {
            Ok(r) if r.status().is_success() => Ok(()),
            Ok(r) if r.status().is_redirection() => {
                let location = r
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .map(|l| String::from_utf8_lossy(l.as_bytes()).into_owned())
                    .unwrap_or_else(|| "none".into());
                Err(self.failed(format!(
                    "answered {} to {location:?}; redirects are not followed",
                    r.status()
                )))
            }
            Ok(r) => Err(self.failed(format!("answered {}", r.status()))),
            Err(e) if e.is_timeout() => {
                Err(self.failed(format!("no answer within {} s", self.timeout.as_secs())))
            }
            Err(e) => Err(self.failed(without_url(&e))),
        }
    }
}

/// A reqwest error's message without its URL (the caller names the sink already).
/// How a webhook is named in logs, errors and the stored alert state: its scheme and host, and
/// a digest of the whole URL. Webhook URLs often carry their credential in the path (Slack's
/// do), so the URL itself is never written anywhere.
pub fn sink_name(url: &str) -> String {
    use sha2::Digest;
    let digest = hex::encode(&Sha256::digest(url.as_bytes())[..4]);
    let origin = url
        .split_once("://")
        .map(|(scheme, rest)| {
            let host = rest.split(['/', '?', '#']).next().unwrap_or("");
            // Credentials before the host (`user:pass@host`) are dropped too.
            let host = host.rsplit('@').next().unwrap_or(host);
            format!("{scheme}://{host}")
        })
        .unwrap_or_else(|| "webhook".into());
    format!("{origin}/…#{digest}")
}

fn without_url(e: &reqwest::Error) -> String {
    let mut e = e.to_string();
    if let Some(i) = e.find(" for url (") {
        e.truncate(i);
    }
    e
}

/// A notifier for each webhook of `config`, secrets read from `secrets` now: a missing secret
/// is refused at start-up, not at the first alert.
pub fn webhook_notifiers(
    config: &super::AlertConfig,
    secrets: &Secrets,
) -> Result<Vec<DynNotifier>> {
    config
        .webhooks
        .iter()
        .map(|w| Ok(std::sync::Arc::new(WebhookNotifier::new(w, secrets)?) as DynNotifier))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sink_names_hide_the_path_and_credentials() {
        let a = sink_name("https://hooks.slack.com/services/T000/B000/XXXXSECRET");
        assert!(a.starts_with("https://hooks.slack.com/…#"), "{a}");
        assert!(!a.contains("SECRET") && !a.contains("T000"), "{a}");
        assert_eq!(
            a,
            sink_name("https://hooks.slack.com/services/T000/B000/XXXXSECRET")
        );
        assert_ne!(
            a,
            sink_name("https://hooks.slack.com/services/T000/B000/OTHER")
        );
        let b = sink_name("http://user:pw@127.0.0.1:9000/hook?token=abc");
        assert!(
            b.starts_with("http://127.0.0.1:9000/…#") && !b.contains("pw") && !b.contains("abc"),
            "{b}"
        );
    }

    #[test]
    fn signature_signs_the_time_dot_the_body() {
        // Python: hmac.new(b"Jefe", b'1700000000.{"events":[]}', hashlib.sha256).hexdigest()
        assert_eq!(
            signature(b"Jefe", 1_700_000_000, br#"{"events":[]}"#),
            "t=1700000000,v1=a110c986da302c5f37accf36f899e479e3fefc1bf8e4d6b0c91b30f3838ed197"
        );
    }
}
