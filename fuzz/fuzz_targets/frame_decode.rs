//! Frames from an untrusted peer: header checks and every message decoder.
//! Run with `cargo +nightly fuzz run frame_decode` from this directory.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    vaccel_proto::fuzz_frame(data);
});
