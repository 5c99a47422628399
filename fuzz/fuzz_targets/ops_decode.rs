//! Every decoder of op arguments and structured payloads, fed untrusted bytes.
//! Run with `cargo +nightly fuzz run ops_decode` from this directory.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    vaccel_core::ops::fuzz_decoders(data);
});
