//! [`HandlerError`]: how a failure crosses the Lambda boundary.

use lambda_runtime::Diagnostic;

/// The `error_type` of a failure that may succeed if the invocation is simply run again
/// (throttling, a timeout, a 5xx). The state machine's `Retry` matches on it.
pub const RETRYABLE: &str = "Retryable";
/// The `error_type` of a failure that will fail again (a malformed event, a missing bucket,
/// denied access, a bad config): the state machine does not retry it.
pub const NON_RETRYABLE: &str = "NonRetryable";

/// A handler failure, with its retry class.
///
/// It reaches Lambda as a [`Diagnostic`] whose `error_type` is [`RETRYABLE`] or
/// [`NON_RETRYABLE`], so Step Functions can retry exactly what can succeed.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct HandlerError {
    message: String,
    retryable: bool,
}

impl HandlerError {
    /// A failure that will fail again.
    pub fn non_retryable(message: impl Into<String>) -> Self {
        HandlerError {
            message: message.into(),
            retryable: false,
        }
    }

    /// A failure that may go away on its own.
    pub fn retryable(message: impl Into<String>) -> Self {
        HandlerError {
            message: message.into(),
            retryable: true,
        }
    }

    /// An event of a shape this handler does not take.
    pub fn bad_event(handler: &str, what: impl std::fmt::Display) -> Self {
        HandlerError::non_retryable(format!("{handler}: unusable event: {what}"))
    }

    /// The same failure, its message prefixed with what it happened to (`what: message`).
    pub fn context(self, what: &str) -> Self {
        HandlerError {
            message: format!("{what}: {}", self.message),
            ..self
        }
    }

    /// Whether running the invocation again may succeed.
    pub fn is_retryable(&self) -> bool {
        self.retryable
    }

    /// [`RETRYABLE`] or [`NON_RETRYABLE`].
    pub fn error_type(&self) -> &'static str {
        if self.retryable {
            RETRYABLE
        } else {
            NON_RETRYABLE
        }
    }

    /// The message, naming what failed.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl From<cryptomon_core::Error> for HandlerError {
    fn from(e: cryptomon_core::Error) -> Self {
        HandlerError {
            retryable: e.is_retryable(),
            message: e.to_string(),
        }
    }
}

impl From<HandlerError> for Diagnostic {
    fn from(e: HandlerError) -> Self {
        Diagnostic {
            error_type: e.error_type().to_owned(),
            error_message: e.message,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_errors_keep_their_retry_class() {
        let throttled = cryptomon_core::Error::Source {
            source_name: "kraken".into(),
            message: "HTTP 503".into(),
            retryable: true,
        };
        let d = Diagnostic::from(HandlerError::from(throttled));
        assert_eq!(d.error_type, RETRYABLE);
        assert!(d.error_message.contains("kraken"), "{}", d.error_message);

        let config = cryptomon_core::Error::Config("unknown kind \"krakken\"".into());
        let d = Diagnostic::from(HandlerError::from(config));
        assert_eq!(d.error_type, NON_RETRYABLE);
        assert!(d.error_message.contains("krakken"));
    }
}
