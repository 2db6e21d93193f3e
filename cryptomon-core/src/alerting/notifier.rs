//! The [`Notifier`] trait: somewhere alert events are delivered (a webhook, an SNS topic).

use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::events::AlertEvent;
use crate::error::Result;

/// Somewhere alert events go: a webhook, an SNS topic.
#[async_trait]
pub trait Notifier: Send + Sync + Debug {
    /// The sink's name in the alert state and in logs (a webhook's scheme, host and digest,
    /// `sns:<arn>`). Must not hold a secret.
    fn sink(&self) -> String;

    /// How long one attempt may take; a round's budget may cut it shorter.
    fn timeout(&self) -> Duration;

    /// The largest message the sink takes, in bytes.
    fn max_message_bytes(&self) -> usize;

    /// The size in bytes of the message [`notify`](Self::notify) sends for `events`.
    fn message_bytes(&self, events: &[AlertEvent]) -> usize;

    /// Delivers `events` (one or more, oldest first) as one message, named `delivery`: the
    /// same name on every retry of the same events. `Ok` means the receiver took them all.
    async fn notify(&self, delivery: &str, events: &[AlertEvent]) -> Result<()>;
}

/// A shared notifier.
pub type DynNotifier = Arc<dyn Notifier>;
