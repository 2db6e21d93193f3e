//! The stored window state (Parquet) through the transform's reader: read or refused, never a
//! panic; a state that is read survives being written again.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| cryptomon_fuzz::stored::window_state(data));
