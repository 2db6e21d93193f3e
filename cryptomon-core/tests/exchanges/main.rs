//! The exchange sources against a local mock server (wiremock on loopback) serving real
//! exchange bodies from `tests/fixtures` (see its PROVENANCE.md): success bodies parse to the
//! right quotes, error bodies to the right errors, and the wire behaviour (retries, timeouts,
//! `Retry-After`, request counts) is what the issue asks for. No test talks to the internet.
//!
//! One module per exchange, tables of bodies and what they give; `wire` and `bounds` hold the
//! HTTP layer's behaviour, shared by every exchange; `collect` runs config to snapshots.

mod binance;
mod bounds;
mod candles;
mod coinbase;
mod coingecko;
mod collect;
mod common;
mod kraken;
mod wire;
