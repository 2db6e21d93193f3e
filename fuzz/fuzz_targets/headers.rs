//! A 429's headers through the HTTP layer: the retry fits in the time left, the pause is at most
//! an hour, plain digits are seconds however many; never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| cryptomon_fuzz::headers::check(data));
