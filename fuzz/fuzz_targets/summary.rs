//! The stored summary through `read_summary`: read or refused, never a panic; a summary that is
//! read survives a JSON round trip.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| cryptomon_fuzz::stored::summary(data));
