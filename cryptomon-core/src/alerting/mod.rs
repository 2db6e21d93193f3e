//! Alerting: rules from the config evaluated on the window at every transform, events that
//! fire once per condition (with a cooldown) and resolve when it clears, and their delivery.
//!
//! - [`rules`]: the `[alerts]` table: rules, webhooks, an SNS topic; checked at start-up.
//! - [`evaluate`]: which rule conditions hold at a tick. Pure.
//! - [`events`]: the events and the state that turns conditions into them. Pure.
//! - `webhook` (feature `webhooks`): delivery to webhooks, HMAC-SHA256 signed.

pub mod evaluate;
pub mod events;
pub mod rules;
#[cfg(feature = "webhooks")]
pub mod webhook;

pub use evaluate::{Condition, Subject, evaluate};
pub use events::{
    ALERT_EVENT_SCHEMA, ALERT_STATE_KEY, ALERTS_PREFIX, AlertEvent, AlertState, EventStatus,
    Pending,
};
pub use rules::{AlertConfig, Pattern, Rule, RuleKind, Webhook, WebhookFormat};
#[cfg(feature = "webhooks")]
pub use webhook::{SIGNATURE_HEADER, WebhookNotifier, sign, sink_name, webhook_notifiers};

#[cfg(test)]
mod tests;
