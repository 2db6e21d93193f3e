//! [`RequestLimiter`]: a per-exchange request rate (governor's GCRA) on tokio's clock.
//!
//! governor's own clocks read the real time; this one reads `tokio::time::Instant`, so waits
//! are tokio sleeps and tests with paused time see the limiter's delays without waiting them.

use std::num::NonZeroU32;
use std::ops::Add;
use std::time::Duration;

use governor::clock::{Clock, Reference};
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use tokio::time::Instant;

/// A `tokio::time::Instant` as a governor time reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct TokioInstant(Instant);

impl Add<Nanos> for TokioInstant {
    type Output = Self;
    fn add(self, other: Nanos) -> Self {
        TokioInstant(self.0 + Duration::from(other))
    }
}

impl Reference for TokioInstant {
    fn duration_since(&self, earlier: Self) -> Nanos {
        self.0.saturating_duration_since(earlier.0).into()
    }
    fn saturating_sub(&self, duration: Nanos) -> Self {
        self.0
            .checked_sub(duration.into())
            .map_or(*self, TokioInstant)
    }
}

/// governor's clock reading tokio's time.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct TokioClock;

impl Clock for TokioClock {
    type Instant = TokioInstant;
    fn now(&self) -> TokioInstant {
        TokioInstant(Instant::now())
    }
}

/// At most `per_second` requests a second (bursts of as many), shared by every request of one
/// exchange, retries included.
#[derive(Debug)]
pub(crate) struct RequestLimiter {
    limiter: RateLimiter<NotKeyed, InMemoryState, TokioClock, NoOpMiddleware<TokioInstant>>,
}

impl RequestLimiter {
    /// `count` requests every `period`, in bursts of up to `count`.
    pub(crate) fn new(count: NonZeroU32, period: Duration) -> Self {
        let quota = Quota::with_period(period / count.get())
            .unwrap_or_else(|| Quota::per_second(count))
            .allow_burst(count);
        RequestLimiter {
            limiter: RateLimiter::direct_with_clock(quota, TokioClock),
        }
    }

    /// Waits until a request may go out, or returns `false` at once if the rate allows the next
    /// one only after `deadline` (the caller gives up rather than overrun its tick).
    pub(crate) async fn until_ready(&self, deadline: Instant) -> bool {
        loop {
            match self.limiter.check() {
                Ok(()) => return true,
                Err(not_until) => {
                    let at = Instant::now() + not_until.wait_time_from(TokioClock.now());
                    if at > deadline {
                        return false;
                    }
                    // Then check again: another request of this exchange may take the slot first.
                    tokio::time::sleep_until(at).await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn spaces_requests_beyond_the_burst() {
        let limiter = RequestLimiter::new(NonZeroU32::new(2).unwrap(), Duration::from_secs(1));
        let start = Instant::now();
        let far = start + Duration::from_secs(60);
        for _ in 0..2 {
            assert!(limiter.until_ready(far).await);
        }
        assert_eq!(Instant::now(), start, "a burst of 2 goes out at once");
        assert!(limiter.until_ready(far).await);
        assert!(Instant::now() >= start + Duration::from_millis(500));
        assert!(Instant::now() < start + Duration::from_millis(600));
    }

    #[tokio::test(start_paused = true)]
    async fn refuses_a_slot_past_the_deadline() {
        let limiter = RequestLimiter::new(NonZeroU32::new(1).unwrap(), Duration::from_secs(10));
        let now = Instant::now();
        assert!(limiter.until_ready(now + Duration::from_secs(1)).await);
        assert!(!limiter.until_ready(now + Duration::from_secs(1)).await);
        assert_eq!(Instant::now(), now, "gave up without sleeping");
    }
}
