//! Store keys: validation and the raw-key parser. A key that parses as a raw key must validate
//! and must be what `raw_key` would write for its source and tick.
#![no_main]

use cryptomon_core::keys::{parse_raw_key, raw_key, validate_key, validate_prefix};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(key) = std::str::from_utf8(data) else {
        return;
    };
    let valid = validate_key(key).is_ok();
    let _ = validate_prefix(key);
    if let Some(raw) = parse_raw_key(key) {
        assert!(valid, "{key:?} parses as a raw key but does not validate");
        assert_eq!(
            raw_key(&raw.source, raw.tick),
            key,
            "{key:?} does not round-trip"
        );
    }
});
