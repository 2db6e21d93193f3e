//! [`Throttle`]: what one exchange's requests share, the request rate and the pause the
//! exchange asked for after a rate limit.

use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use super::limiter::RequestLimiter;

/// The longest an exchange is left alone after a 429/418: a longer `Retry-After` is taken as
/// this, because one request an hour costs a banning exchange nothing while a garbage header
/// must not silence a source for days.
pub(crate) const MAX_COOLDOWN: Duration = Duration::from_secs(3600);

/// What one exchange's requests share, whichever source entry makes them: the request rate and
/// the time until which the exchange asked to be left alone.
#[derive(Debug)]
pub(crate) struct Throttle {
    limiter: RequestLimiter,
    cooldown_until: Mutex<Option<Instant>>,
}

impl Throttle {
    /// `count` requests per `period` for one exchange.
    pub(crate) fn new(count: u32, period: Duration) -> Arc<Self> {
        Arc::new(Throttle {
            limiter: RequestLimiter::new(NonZeroU32::new(count).unwrap_or(NonZeroU32::MIN), period),
            cooldown_until: Mutex::new(None),
        })
    }

    /// How long the exchange asked to be left alone for still, if it did.
    pub(super) fn cooling_for(&self) -> Option<Duration> {
        let until = (*self
            .cooldown_until
            .lock()
            .unwrap_or_else(|e| e.into_inner()))?;
        let left = until.saturating_duration_since(Instant::now());
        (!left.is_zero()).then_some(left)
    }

    /// Leaves the exchange alone for `pause`, at most [`MAX_COOLDOWN`].
    pub(super) fn cool_for(&self, pause: Duration) {
        let until = Instant::now() + cooldown(pause);
        let mut slot = self
            .cooldown_until
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        *slot = Some(slot.map_or(until, |u| u.max(until)));
    }

    /// Waits for the request rate to allow a request; `false` if it would not before `deadline`.
    pub(super) async fn until_ready(&self, deadline: Instant) -> bool {
        self.limiter.until_ready(deadline).await
    }
}

/// How long an exchange is left alone after it asked for `pause`.
pub(crate) fn cooldown(pause: Duration) -> Duration {
    pause.min(MAX_COOLDOWN)
}
