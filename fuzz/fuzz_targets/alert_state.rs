//! The stored alert state through `AlertState::decode`: read or refused, never a panic; a state
//! that is read encodes and decodes back equal.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| cryptomon_fuzz::stored::alert_state(data));
