//! Alerting: rules from the config evaluated on the window at every transform, events that
//! fire once per condition (with a cooldown) and resolve when it clears, and their delivery.
//!
//! - [`rules`]: the `[alerts]` table: rules, webhooks, an SNS topic; checked at start-up.
//! - [`evaluate`](mod@evaluate): which rule conditions hold at a tick. Pure.
//! - [`events`]: the events and the state that turns conditions into them. Pure.
//! - [`batches`]: the events owed to a sink split into deliveries within its size limit. Pure.
//! - [`notifier`]: the [`Notifier`] trait, somewhere events are delivered.
//! - `webhook` (feature `webhooks`): delivery to webhooks, signed with a timestamp.

pub mod batches;
pub mod evaluate;
pub mod events;
pub mod notifier;
pub mod rules;
#[cfg(feature = "webhooks")]
pub mod webhook;

pub use evaluate::{Condition, Subject, evaluate};
pub use events::{
    ALERT_EVENT_SCHEMA, ALERT_STATE_KEY, ALERTS_PREFIX, AlertEvent, AlertState, EventStatus,
    KeyedAlertEvent, Pending, corrupt_state_key,
};
pub use notifier::{DynNotifier, Notifier};
pub use rules::{
    AlertConfig, DEFAULT_DELIVERY_ATTEMPTS, DEFAULT_WEBHOOK_MAX_BODY_BYTES, Pattern, Rule,
    RuleKind, Webhook, WebhookFormat,
};
#[cfg(feature = "webhooks")]
pub use webhook::{
    DELIVERY_HEADER, SIGNATURE_HEADER, WebhookNotifier, signature, sink_name, webhook_notifiers,
};

#[cfg(test)]
mod tests;
