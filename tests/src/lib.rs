//! Cross-crate tests live in `tests/`; this library holds what several of them share.
//!
//! # Layout
//!
//! - [`alert_rules`]: alert rules the tests share.
//! - [`golden`]: the golden data set's raw objects.
//! - [`moto`]: S3 tests against a moto server on loopback: the endpoint, fresh buckets.
//! - [`queued_alerts`]: alert events stored and queued for a sink, as a transform leaves them.
//! - [`fake_s3`]: an S3 endpoint that answers every request with one error (403, 503, ...).

pub mod alert_rules;
pub mod fake_s3;
pub mod golden;
pub mod moto;
pub mod queued_alerts;
