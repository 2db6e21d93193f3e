//! Binance's answers: first byte the HTTP status, then the body. Read into quotes the transform
//! can read back, or refused; never a panic.
#![no_main]

use cryptomon_core::exchange::fuzzing::ExchangeKind;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| cryptomon_fuzz::exchange::check(ExchangeKind::Binance, data));
