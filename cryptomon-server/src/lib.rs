//! The standalone cryptomon: the `cryptomon` command line and (soon) the HTTP API.
//!
//! # Layout
//!
//! - `main.rs`: the `cryptomon` binary.
