//! Alert delivery: the events a transform causes, recorded and queued for every sink, and the
//! rounds that deliver them.
//!
//! Recording runs inside the transform, after the aggregates are written: it evaluates the
//! rules, stores each new event create-only under `alerts/` (so a re-run of a tick stores
//! nothing twice) and queues a delivery per (event, sink) in the alert state. Delivery is a
//! separate round the host runs after the transform ([`deliver`]): a slow or failing receiver
//! never delays or fails the transform, and what it did not take stays queued for the next
//! round.
//!
//! A round serves every sink at once, each bounded by its own timeout and by the round's
//! budget, and writes the alert state after each attempt: a hung sink costs only its own
//! attempt, and what the others took is never sent again.

mod deliver;
mod events;
mod record;
mod state;

use std::sync::Arc;
use std::time::Duration;

use crate::alerting::{AlertConfig, DynNotifier};
use crate::error::Result;
use crate::store::Store;

pub use deliver::{DEFAULT_DELIVERY_BUDGET, DeliveryOptions, DeliveryReport, deliver};
pub use events::{list_event_keys, read_event, read_events};
pub(crate) use record::record;

/// The alert set-up a host runs with: the rules and where their events go.
#[derive(Debug, Clone, Default)]
pub struct Alerting {
    /// The rules.
    pub config: Arc<AlertConfig>,
    /// The sinks (webhooks, SNS); the log is always one besides them.
    pub notifiers: Vec<DynNotifier>,
}

impl Alerting {
    /// Rules and notifiers.
    pub fn new(config: AlertConfig, notifiers: Vec<DynNotifier>) -> Self {
        Alerting {
            config: Arc::new(config),
            notifiers,
        }
    }

    /// The `[alerts]` table of a config, checked (an invalid rule is an error naming it), with
    /// a notifier for each webhook (secrets read from `secrets` now).
    #[cfg(feature = "webhooks")]
    pub fn from_config(
        config: &crate::config::Config,
        secrets: &crate::secrets::Secrets,
    ) -> Result<Self> {
        let alerts = AlertConfig::from_toml(config.alerts.as_ref())?;
        let notifiers = crate::alerting::webhook_notifiers(&alerts, secrets)?;
        Ok(Self::new(alerts, notifiers))
    }

    /// Transform options in `mode` that evaluate these rules and queue events for these sinks.
    pub fn options(&self, mode: super::TransformMode) -> super::TransformOptions {
        super::TransformOptions {
            mode,
            alerts: self.config.clone(),
            sinks: self.notifiers.iter().map(|n| n.sink()).collect(),
            ..super::TransformOptions::default()
        }
    }

    /// One delivery round to every notifier ([`deliver`]) within `budget`, with the config's
    /// attempts per delivery; nothing to do without notifiers.
    pub async fn deliver(&self, store: &dyn Store, budget: Duration) -> Result<DeliveryReport> {
        if self.notifiers.is_empty() {
            return Ok(DeliveryReport::default());
        }
        let options = DeliveryOptions {
            budget,
            max_attempts: self.config.delivery_attempts,
        };
        deliver(store, &self.notifiers, &options).await
    }
}
