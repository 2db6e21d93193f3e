//! A stored alert event through `read_event`: read or skipped, never a panic; an event that is
//! read has a key and survives a JSON round trip.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| cryptomon_fuzz::stored::alert_event(data));
