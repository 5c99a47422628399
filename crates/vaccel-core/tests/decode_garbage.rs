//! Decoders of untrusted bytes never panic: random and mutated inputs
//! through the same entry point the fuzz target uses (fuzz/).

use vaccel_core::ops::{self, Label};

/// xorshift64*: deterministic, so a failure is reproducible from the seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn bytes(&mut self, max: usize) -> Vec<u8> {
        let n = (self.next() as usize) % max;
        (0..n).map(|_| self.next() as u8).collect()
    }
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..20_000 {
        ops::fuzz_decoders(&rng.bytes(512));
    }
}

#[test]
fn mutated_valid_payloads_never_panic() {
    let labels = ops::encode_labels(&[
        Label {
            index: 1,
            label: "a".into(),
            score: 0.5,
        },
        Label {
            index: 2,
            label: "bb".into(),
            score: 0.25,
        },
    ]);
    let mut rng = Rng(42);
    for _ in 0..20_000 {
        let mut m = labels.clone();
        let flips = 1 + rng.next() as usize % 4;
        for _ in 0..flips {
            let i = rng.next() as usize % m.len();
            m[i] = rng.next() as u8;
        }
        ops::fuzz_decoders(&m);
        // A valid prefix count with a hostile length must not allocate wildly or panic.
        let _ = ops::decode_labels(&m);
    }
}
