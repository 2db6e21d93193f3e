//! cryptomon on AWS Lambda (skeleton until the serverless issue).
//!
//! # Layout
//!
//! Nothing yet: the collector, transformer and api handlers arrive with the serverless issue.
