//! The properties the fuzz targets check, one function per target, so each target is a line and
//! a crash names the property it broke.
//!
//! # Layout
//!
//! - [`exchange`]: an exchange's answer is read into quotes the collector can store and the
//!   transform can read back, or refused with an error; never a panic.
//! - [`api`]: any request path and query gets an answer below 500, with a JSON error for a 4xx.
//! - [`headers`]: a rate-limited answer's headers give a wait within the time left.
//! - [`stored`]: the summary, alert state and alert events read back from the store are read
//!   or refused, and what is read survives a round trip.
//! - [`lambda`]: the Lambda handlers' event payloads are answered or refused with an error.
//!
//! The snapshot, key and config properties are small enough to live in their targets.

pub mod api;
pub mod exchange;
pub mod headers;
pub mod lambda;
pub mod stored;

/// The one current-thread runtime the targets that drive async code share.
pub(crate) fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime")
    })
}
