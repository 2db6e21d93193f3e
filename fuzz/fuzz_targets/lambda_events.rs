//! The Lambda handlers' event payloads (collector, transformer, api behind API Gateway v2):
//! answered or refused with an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| cryptomon_fuzz::lambda::check(data));
