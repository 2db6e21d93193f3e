//! The API's path and query parsing, through the whole router: any `GET` target gets an answer
//! below 500, with a JSON error for a 4xx.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| cryptomon_fuzz::api::check(data));
