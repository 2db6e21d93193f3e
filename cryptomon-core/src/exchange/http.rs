//! The HTTP layer every exchange shares: one reqwest client (rustls), per-request timeouts,
//! retries with exponential backoff and jitter (backon) on timeouts, connection errors and 5xx,
//! `Retry-After` honoured on 429/418, a per-exchange request rate, a time budget per fetch so a
//! source never retries into the next tick, and a cap on the size of a body.
//!
//! Every wait is bounded: backoff, `Retry-After` and request timeouts end by the fetch's deadline
//! (its budget, or the caller's [`fetch_deadline`] if sooner), and a header's value, however
//! absurd, is clamped rather than added to a clock unchecked.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use bytes::{Bytes, BytesMut};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use tokio::time::Instant;

use super::reply::{Reply, excerpt};
use super::throttle::{MAX_COOLDOWN, Throttle};
use crate::error::{Error, Result};
use crate::model::SourceName;
use crate::pipeline::fetch_deadline;

/// How sources talk HTTP: timeouts, retries and the time budget of one fetch.
///
/// [`HttpPolicy::for_interval`] gives the defaults [`super::build_sources`] uses; tests and
/// embedders may tune any field.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpPolicy {
    /// Timeout of one request (connect to last body byte); `None` for none, which only tests
    /// with paused time want (a pending timer would fire while the mock server answers).
    pub timeout: Option<Duration>,
    /// Retries after the first attempt, for timeouts, connection errors, 5xx and rate limits
    /// whose `Retry-After` ends within the budget.
    pub max_retries: usize,
    /// First backoff delay; each next one doubles, with jitter.
    pub min_backoff: Duration,
    /// Longest backoff delay.
    pub max_backoff: Duration,
    /// How long one fetch may take in all, retries and waits included. Shorter than the
    /// interval so a slow exchange never overruns into the next tick.
    pub budget: Duration,
    /// How long an exchange is left alone after a 429/418 that carries no `Retry-After`.
    pub rate_limit_pause: Duration,
    /// How long an idle connection is kept for reuse; `None` keeps it until the server closes
    /// it (tests with paused time want that: the pool's idle timer would move their clock).
    pub pool_idle_timeout: Option<Duration>,
}

impl HttpPolicy {
    /// The defaults for a collection every `interval_secs` seconds: 10 s timeouts, 3 retries
    /// from 250 ms to 4 s, a budget of three quarters of the interval, a 10 s pause after a rate
    /// limit without `Retry-After`.
    pub fn for_interval(interval_secs: u32) -> Self {
        let interval = Duration::from_secs(u64::from(interval_secs.max(1)));
        let budget = (interval * 3 / 4).max(Duration::from_secs(1));
        HttpPolicy {
            timeout: Some(Duration::from_secs(10).min(budget)),
            max_retries: 3,
            min_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(4),
            budget,
            rate_limit_pause: Duration::from_secs(10),
            pool_idle_timeout: Some(Duration::from_secs(50)),
        }
    }
}

impl Default for HttpPolicy {
    /// [`HttpPolicy::for_interval`] of the default one-minute interval.
    fn default() -> Self {
        HttpPolicy::for_interval(crate::config::DEFAULT_INTERVAL_SECS)
    }
}

/// Why a request gave no [`Reply`].
#[derive(Debug)]
enum HttpError {
    /// No response: timeout, refused or reset connection, broken body.
    Transport { detail: String, timeout: bool },
    /// A 5xx.
    Server { status: u16, detail: String },
    /// 429 or 418.
    RateLimited {
        status: u16,
        retry_after: Option<Duration>,
        detail: String,
    },
    /// The exchange asked to be left alone for longer; nothing was sent.
    CoolingDown(Duration),
    /// The request rate allows the next request only after the fetch's budget.
    OutOfTime,
    /// The body is longer than the source's cap (`declared`: as its `Content-Length` said,
    /// before any of it was read).
    TooLarge { limit: u64, declared: Option<u64> },
}

impl HttpError {
    /// Whether another attempt within this tick could help.
    fn is_transient(&self) -> bool {
        matches!(
            self,
            HttpError::Transport { .. } | HttpError::Server { .. } | HttpError::RateLimited { .. }
        )
    }
}

/// The HTTP client of one source.
pub(crate) struct HttpClient {
    client: reqwest::Client,
    throttle: Arc<Throttle>,
    policy: HttpPolicy,
    source: SourceName,
    /// The longest body read; a longer one is refused.
    max_body_bytes: u64,
    headers: HeaderMap,
    /// The API key sent in `headers`, if any, so it can be cut out of anything recorded.
    secret: Option<String>,
}

impl fmt::Debug for HttpClient {
    // By hand: the headers may hold a key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpClient")
            .field("source", &self.source)
            .field("policy", &self.policy)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("authenticated", &self.secret.is_some())
            .finish_non_exhaustive()
    }
}

impl HttpClient {
    /// A client for `source`, sharing `throttle` with the other sources of its exchange, reading
    /// bodies of at most `max_body_bytes`.
    pub(crate) fn new(
        source: &SourceName,
        policy: &HttpPolicy,
        max_body_bytes: u64,
        throttle: Arc<Throttle>,
        api_key: Option<(&'static str, String)>,
    ) -> Result<Self> {
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("cryptomon/", env!("CARGO_PKG_VERSION")))
            .pool_idle_timeout(policy.pool_idle_timeout);
        if let Some(t) = policy.timeout {
            builder = builder.connect_timeout(t);
        }
        let client = builder.build().map_err(|e| Error::Source {
            source_name: source.to_string(),
            message: format!("cannot build the HTTP client: {e}"),
            retryable: false,
        })?;
        let mut headers = HeaderMap::new();
        let mut secret = None;
        if let Some((name, key)) = api_key {
            let mut value = HeaderValue::from_str(&key).map_err(|_| {
                Error::Config(format!(
                    "the API key of source {source} is not a valid header value"
                ))
            })?;
            value.set_sensitive(true);
            headers.insert(HeaderName::from_static(name), value);
            secret = Some(key);
        }
        Ok(HttpClient {
            client,
            throttle,
            policy: policy.clone(),
            source: source.clone(),
            max_body_bytes,
            headers,
            secret,
        })
    }

    /// When the fetch starting now must be over: at the end of its budget, or at the caller's
    /// deadline if that comes first.
    pub(crate) fn deadline(&self) -> Instant {
        let now = Instant::now();
        let budget_end = now.checked_add(self.policy.budget);
        match (budget_end, fetch_deadline()) {
            (Some(end), Some(caller)) => end.min(caller),
            (Some(end), None) => end,
            (None, Some(caller)) => caller,
            // Both unbounded: a budget of `Duration::MAX`, which only an embedder could set.
            (None, None) => now + Duration::from_secs(86_400 * 365),
        }
    }

    /// An error of this source.
    pub(crate) fn error(&self, message: String, retryable: bool) -> Error {
        Error::Source {
            source_name: self.source.to_string(),
            message,
            retryable,
        }
    }

    /// GETs `url` with `query`, retrying what may pass within `deadline`, and returns the first
    /// response that is not retried (any 2xx or 4xx but 429/418) with the key cut out of its body.
    pub(crate) async fn get(
        &self,
        url: &str,
        query: &[(&str, String)],
        deadline: Instant,
    ) -> Result<Reply> {
        let attempts = AtomicUsize::new(0);
        let backoff = ExponentialBuilder::default()
            .with_min_delay(self.policy.min_backoff)
            .with_max_delay(self.policy.max_backoff)
            .with_max_times(self.policy.max_retries)
            .with_jitter();
        let outcome = (|| async {
            attempts.fetch_add(1, Ordering::Relaxed);
            self.attempt(url, query, deadline).await
        })
        .retry(backoff)
        .sleep(tokio::time::sleep)
        .when(HttpError::is_transient)
        .adjust(|e, delay| next_delay(e, delay, deadline))
        .notify(
            |e, delay| tracing::debug!(source = %self.source, url, error = ?e, ?delay, "retrying"),
        )
        .await;
        outcome.map_err(|e| self.describe(url, e, attempts.load(Ordering::Relaxed)))
    }

    async fn attempt(
        &self,
        url: &str,
        query: &[(&str, String)],
        deadline: Instant,
    ) -> std::result::Result<Reply, HttpError> {
        if let Some(left) = self.throttle.cooling_for() {
            return Err(HttpError::CoolingDown(left));
        }
        if !self.throttle.until_ready(deadline).await {
            return Err(HttpError::OutOfTime);
        }
        let mut request = self
            .client
            .get(url)
            .query(query)
            .headers(self.headers.clone());
        if let Some(timeout) = self.policy.timeout {
            let left = deadline.saturating_duration_since(Instant::now());
            request = request.timeout(timeout.min(left).max(Duration::from_millis(1)));
        }
        let transport = |e: reqwest::Error| HttpError::Transport {
            timeout: e.is_timeout(),
            detail: error_chain(&e.without_url()),
        };
        let response = request.send().await.map_err(transport)?;
        let status = response.status().as_u16();
        let retry_after = retry_after_of(response.headers());
        let body = self.read_body(response).await?;
        let body = self.redact(body);
        match status {
            429 | 418 => {
                self.throttle
                    .cool_for(retry_after.unwrap_or(self.policy.rate_limit_pause));
                Err(HttpError::RateLimited {
                    status,
                    retry_after,
                    detail: excerpt(&body),
                })
            }
            500..=599 => Err(HttpError::Server {
                status,
                detail: excerpt(&body),
            }),
            _ => Ok(Reply { status, body }),
        }
    }

    /// Reads the body chunk by chunk, never holding more than the cap: a `Content-Length`
    /// over it is refused before reading, an endless body as soon as it passes it.
    async fn read_body(
        &self,
        mut response: reqwest::Response,
    ) -> std::result::Result<Bytes, HttpError> {
        let limit = self.max_body_bytes;
        let declared = response.content_length();
        if let Some(length) = declared.filter(|&l| l > limit) {
            return Err(HttpError::TooLarge {
                limit,
                declared: Some(length),
            });
        }
        let mut body = BytesMut::with_capacity(declared.unwrap_or(0) as usize);
        while let Some(chunk) = response.chunk().await.map_err(|e| HttpError::Transport {
            timeout: e.is_timeout(),
            detail: error_chain(&e.without_url()),
        })? {
            if (body.len() + chunk.len()) as u64 > limit {
                return Err(HttpError::TooLarge {
                    limit,
                    declared: None,
                });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body.freeze())
    }

    fn redact(&self, body: Bytes) -> Bytes {
        match &self.secret {
            Some(secret) if !secret.is_empty() => {
                let text = String::from_utf8_lossy(&body);
                if text.contains(secret.as_str()) {
                    Bytes::from(text.replace(secret.as_str(), "[redacted]"))
                } else {
                    body
                }
            }
            _ => body,
        }
    }

    fn describe(&self, url: &str, e: HttpError, attempts: usize) -> Error {
        let tries = if attempts == 1 {
            "1 attempt".to_owned()
        } else {
            format!("{attempts} attempts")
        };
        let message = match e {
            HttpError::Transport { detail, timeout } => {
                let what = if timeout { "timed out" } else { "failed" };
                format!("GET {url} {what} after {tries}: {detail}")
            }
            HttpError::Server { status, detail } => {
                format!("GET {url}: HTTP {status} after {tries}: {detail}")
            }
            HttpError::RateLimited {
                status,
                retry_after,
                detail,
            } => {
                let wait = match retry_after {
                    Some(d) if d > MAX_COOLDOWN => format!(
                        "Retry-After {} s, taken as {} s",
                        d.as_secs(),
                        MAX_COOLDOWN.as_secs()
                    ),
                    Some(d) => format!("Retry-After {} s", d.as_secs()),
                    None => "no Retry-After".to_owned(),
                };
                format!(
                    "GET {url}: rate limited (HTTP {status}, {wait}) after {tries}; \
                     giving up for this tick: {detail}"
                )
            }
            HttpError::TooLarge { limit, declared } => {
                let size = match declared {
                    Some(length) => format!("its Content-Length of {length} bytes is"),
                    None => "it grew".to_owned(),
                };
                return self.error(
                    format!(
                        "GET {url}: body refused: {size} over the limit of {} \
                         (max_body_bytes = {limit})",
                        byte_size(limit)
                    ),
                    false,
                );
            }
            HttpError::CoolingDown(left) => format!(
                "not calling {url}: the exchange asked to be left alone for {} s more",
                left.as_secs().max(1)
            ),
            HttpError::OutOfTime => format!(
                "GET {url}: the request rate allows no attempt before this tick's budget \
                 ({} s) runs out",
                self.policy.budget.as_secs()
            ),
        };
        self.error(message, true)
    }
}

/// The delay before the next attempt, or `None` to give up: no retry sooner than `Retry-After`,
/// none without one after a rate limit, and none that would end after `deadline`.
fn next_delay(e: &HttpError, backoff: Option<Duration>, deadline: Instant) -> Option<Duration> {
    let delay = match e {
        HttpError::RateLimited {
            retry_after: Some(wait),
            ..
        } => backoff.map(|b| b.max(*wait))?,
        HttpError::RateLimited {
            retry_after: None, ..
        } => return None,
        _ => backoff?,
    };
    let left = deadline.saturating_duration_since(Instant::now());
    (delay < left).then_some(delay)
}

/// The `Retry-After` of a response's headers, if it has a readable one.
pub(crate) fn retry_after_of(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_retry_after)
}

/// The delay before retrying a 429 whose headers are `headers`, after a backoff of `backoff`,
/// with `left` of the fetch's budget: `None` gives up for the tick.
pub(crate) fn rate_limit_retry(
    headers: &HeaderMap,
    backoff: Duration,
    left: Duration,
) -> Option<Duration> {
    let deadline = Instant::now().checked_add(left)?;
    let limited = HttpError::RateLimited {
        status: 429,
        retry_after: retry_after_of(headers),
        detail: String::new(),
    };
    next_delay(&limited, Some(backoff), deadline)
}

/// `Retry-After` as seconds or as an HTTP date (a past date is zero); `None` for anything else
/// (a negative or fractional number, garbage), which is then treated as no `Retry-After`.
fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Digits too many for a u64 are still a number of seconds: the longest wait there is.
        return Some(Duration::from_secs(value.parse().unwrap_or(u64::MAX)));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(
        at.duration_since(std::time::SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// `16 MiB` for whole mebibytes, else bytes.
fn byte_size(bytes: u64) -> String {
    const MIB: u64 = 1 << 20;
    if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{} MiB", bytes / MIB)
    } else {
        format!("{bytes} bytes")
    }
}

/// A reqwest error with its causes, which hold the useful part ("connection refused").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let c_text = c.to_string();
        if !text.contains(&c_text) {
            text.push_str(": ");
            text.push_str(&c_text);
        }
        cause = c.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_as_seconds_or_date() {
        assert_eq!(parse_retry_after("120"), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after(" 0 "), Some(Duration::ZERO));
        let soon = httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(30));
        let d = parse_retry_after(&soon).unwrap();
        assert!(
            d >= Duration::from_secs(28) && d <= Duration::from_secs(30),
            "{d:?}"
        );
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn absurd_retry_after_values_are_read_without_overflow() {
        let max = Some(Duration::from_secs(u64::MAX));
        assert_eq!(parse_retry_after("18446744073709551615"), max);
        assert_eq!(parse_retry_after("99999999999999999999999"), max);
        let far = parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT").unwrap();
        assert!(far > Duration::from_secs(200 * 365 * 86_400), "{far:?}");
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(Duration::ZERO),
            "a past date"
        );
        for garbage in [
            "-5",
            "1.5",
            "",
            "+3",
            "Fri, 31 Dec 99999 23:59:59 GMT",
            "\u{0}",
        ] {
            assert_eq!(parse_retry_after(garbage), None, "{garbage:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn delays_respect_retry_after_and_the_deadline() {
        let deadline = Instant::now() + Duration::from_secs(45);
        let limited = |secs: Option<u64>| HttpError::RateLimited {
            status: 429,
            retry_after: secs.map(Duration::from_secs),
            detail: String::new(),
        };
        let short = Some(Duration::from_millis(250));
        assert_eq!(
            next_delay(&limited(Some(5)), short, deadline),
            Some(Duration::from_secs(5))
        );
        assert_eq!(next_delay(&limited(Some(120)), short, deadline), None);
        assert_eq!(next_delay(&limited(None), short, deadline), None);
        assert_eq!(
            next_delay(&limited(Some(5)), None, deadline),
            None,
            "retries exhausted"
        );
        let timeout = HttpError::Transport {
            detail: String::new(),
            timeout: true,
        };
        assert_eq!(next_delay(&timeout, short, deadline), short);
        assert_eq!(
            next_delay(&limited(Some(u64::MAX)), short, deadline),
            None,
            "an absurd Retry-After gives up, it is not added to the clock"
        );
        assert_eq!(
            next_delay(&timeout, Some(Duration::MAX), deadline),
            None,
            "nor is an absurd backoff"
        );
        tokio::time::advance(Duration::from_secs(45)).await;
        assert_eq!(
            next_delay(&timeout, short, deadline),
            None,
            "past the budget"
        );
    }

    #[test]
    fn default_policy_fits_the_interval() {
        let p = HttpPolicy::for_interval(60);
        assert_eq!(p.budget, Duration::from_secs(45));
        assert_eq!(p.timeout, Some(Duration::from_secs(10)));
        let p = HttpPolicy::for_interval(5);
        assert!(p.timeout.unwrap() <= p.budget && p.budget < Duration::from_secs(5));
    }
}
