//! A stored raw object as the transform decodes it: accepted with its samples, or refused with a
//! reason, never a panic. Accepted samples must have been valid JSON.
#![no_main]

use cryptomon_core::pipeline::fuzzing::decode_snapshot;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(n) = decode_snapshot(data) {
        assert!(n > 0, "an accepted snapshot has quotes");
        assert!(serde_json::from_slice::<serde_json::Value>(data).is_ok());
    }
});
