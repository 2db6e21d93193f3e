//! An invocation's time budget: what is left before Lambda's deadline, less a margin kept for
//! finishing (writing what was done, answering).
//!
//! Every handler ends its own work by such a deadline, so a slow exchange or a large rebuild is
//! reported and what was done is written, instead of Lambda killing the invocation with nothing
//! reported (`Sandbox.Timedout`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lambda_runtime::Context;

/// The time left before the invocation's deadline, or `None` for a context that carries no
/// deadline (one built by hand, as in tests).
pub fn time_left(context: &Context) -> Option<Duration> {
    if context.deadline == 0 {
        return None;
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    Some(Duration::from_millis(context.deadline).saturating_sub(now))
}

/// When work must stop to keep `margin` before the invocation's deadline (at once if less is
/// left), or `None` without a deadline.
pub fn stop_at(context: &Context, margin: Duration) -> Option<tokio::time::Instant> {
    time_left(context).map(|left| tokio::time::Instant::now() + left.saturating_sub(margin))
}

/// A context whose deadline is `left` from now, as Lambda gives an invocation: for running a
/// handler by hand (tests, local tools) against a real deadline.
pub fn context_ending_in(left: Duration) -> Context {
    let deadline = SystemTime::now() + left;
    let mut context = Context::default();
    context.deadline = deadline
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis()
        .try_into()
        .unwrap_or(u64::MAX);
    context
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_margin_and_never_goes_negative() {
        assert_eq!(time_left(&Context::default()), None);
        assert_eq!(stop_at(&Context::default(), Duration::from_secs(1)), None);

        let context = context_ending_in(Duration::from_secs(30));
        let left = time_left(&context).unwrap();
        assert!(
            left <= Duration::from_secs(30) && left > Duration::from_secs(29),
            "{left:?}"
        );
        let stop = stop_at(&context, Duration::from_secs(10)).unwrap();
        let until = stop - tokio::time::Instant::now();
        assert!(
            until <= Duration::from_secs(20) && until > Duration::from_secs(19),
            "{until:?}"
        );

        let late = context_ending_in(Duration::from_secs(1));
        let stop = stop_at(&late, Duration::from_secs(10)).unwrap();
        assert!(stop <= tokio::time::Instant::now());
    }
}
