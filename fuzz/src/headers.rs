//! A rate-limited answer's headers as the HTTP layer reads them: whatever `Retry-After` says (a
//! number of any size, a date in any year, garbage), the wait fits in the time left and the
//! pause after it is at most an hour; never a panic.

use std::time::Duration;

use cryptomon_core::exchange::fuzzing::read_rate_limit;

/// The longest pause the HTTP layer leaves an exchange alone for.
const MAX_PAUSE: Duration = Duration::from_secs(3600);

/// The input's first four bytes are the budget left in milliseconds, the next two the backoff
/// in milliseconds; the rest are header lines.
pub fn check(data: &[u8]) {
    if data.len() < 6 {
        return;
    }
    let left = Duration::from_millis(u64::from(u32::from_le_bytes([
        data[0], data[1], data[2], data[3],
    ])));
    let backoff = Duration::from_millis(u64::from(u16::from_le_bytes([data[4], data[5]])));
    let head = &data[6..];
    let reading = read_rate_limit(head, backoff, left);
    if let Some(wait) = reading.retry_in {
        assert!(wait < left, "a retry in {wait:?} with {left:?} left");
        assert!(wait >= backoff, "a retry sooner than the backoff");
        let after = reading
            .retry_after
            .expect("a retry after a 429 needs Retry-After");
        assert!(
            wait >= after,
            "a retry in {wait:?}, before Retry-After {after:?}"
        );
    }
    assert!(reading.pause <= MAX_PAUSE, "a pause of {:?}", reading.pause);
    // A lone `Retry-After` of plain digits is that many seconds, however many.
    if let Some(value) = head.strip_prefix(b"Retry-After:")
        && !value.contains(&b'\n')
    {
        let value = value.trim_ascii();
        if !value.is_empty() && value.iter().all(u8::is_ascii_digit) {
            let secs = std::str::from_utf8(value)
                .ok()
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(u64::MAX);
            assert_eq!(reading.retry_after, Some(Duration::from_secs(secs)));
        }
    }
}
