//! cryptomon on AWS Lambda: the collector, transformer and api functions.
//!
//! Each function is a thin binary in `src/bin/` that reads [`Settings`] from the environment,
//! builds the real backends once (an [`S3Store`](cryptomon_core::S3Store), the configured
//! sources) and hands every invocation to a handler of this library. The handlers take their
//! dependencies as arguments, so tests drive them with real event JSON over any store.
//!
//! # Layout
//!
//! - [`collector`]: [`Collector`], scheduled event or state machine input → one snapshot per
//!   source for the event's tick.
//! - [`transformer`]: [`Transformer`], collector output or S3 notification → the transform.
//! - [`startup_backfill`]: the transformer's backfill of a fresh deployment's empty window.
//! - [`api`]: the api function's router, answering within the invocation's deadline.
//! - [`alerts`]: the `[alerts]` rules, webhooks and an SNS topic ([`SnsNotifier`]).
//! - [`budget`]: the time an invocation has left before Lambda's deadline, less a margin.
//! - [`metrics`]: [`Metrics`], the collector's and transformer's CloudWatch metrics as Embedded
//!   Metric Format lines on stdout, and their names.
//! - [`settings`]: [`Settings`], the functions' environment (`CRYPTOMON_BUCKET`, ...).
//! - [`parameters`]: [`ParameterStore`], the config and secrets read from SSM Parameter Store
//!   at cold start.
//! - [`error`]: [`HandlerError`], a failure with its retry class, which reaches Lambda as a
//!   `Diagnostic` of type `Retryable` or `NonRetryable`.
//!
//! # Example
//!
//! Run the transformer on a store, as Lambda would on a manual invocation:
//!
//! ```
//! use std::sync::Arc;
//!
//! use cryptomon_lambda::{HandlerError, Transformer};
//! use cryptomon_mock::MemoryStore;
//! use lambda_runtime::{Context, LambdaEvent};
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let transformer = Transformer::new(Arc::new(MemoryStore::new()), None);
//! let event = LambdaEvent::new(serde_json::json!({}), Context::default());
//! // An empty store has nothing to transform: an error that retrying will not fix.
//! let err: HandlerError = transformer.handle(event).await.unwrap_err();
//! assert_eq!(err.error_type(), "NonRetryable");
//! # });
//! ```

pub mod alerts;
pub mod api;
pub mod budget;
pub mod collector;
pub mod error;
pub mod metrics;
pub mod parameters;
pub mod settings;
pub mod sources;
pub mod startup_backfill;
pub mod transformer;

pub use alerts::SnsNotifier;
pub use collector::{Collector, CollectorOutput, SourceFailure};
pub use error::{HandlerError, NON_RETRYABLE, RETRYABLE};
pub use metrics::Metrics;
pub use parameters::ParameterStore;
pub use settings::{ConfigSource, Settings};
pub use transformer::{Transformer, TransformerOutput};
