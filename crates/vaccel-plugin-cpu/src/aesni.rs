//! AES-NI CBC encryption with PKCS#7 padding (x86/x86_64 only).
//!
//! CBC encryption is a serial chain: each block's input depends on the
//! previous block's output, so speed is the latency of one block, ~10–14
//! `aesenc` in a row. The RustCrypto `cbc` + `aes` stack detects AES-NI at
//! run time and therefore calls a non-inlined backend per block, moving the
//! chaining value through memory; that costs about 20% against a loop that
//! keeps the round keys and the chain in registers, which is what this
//! module is. It is used only where [`available`] says so; everything else
//! (decryption, which the `aes` crate already pipelines 8 blocks wide, and
//! machines without AES-NI) goes through RustCrypto. Tests check it against
//! RustCrypto for every key size and many lengths.
//!
//! The key schedule is FIPS-197's word-by-word expansion, with
//! `aeskeygenassist` computing `SubWord`/`RotWord` (constant time; no table
//! lookups).

#[cfg(target_arch = "x86")]
use std::arch::x86::*;
#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

use vaccel_core::ops::AesCbc;

/// Whether this module may run: the CPU has AES-NI (and SSE2), and the
/// `aes` crate was not forced to software by `--cfg aes_force_soft` (so the
/// plugin never uses AES-NI where the `aes` crate would not).
#[allow(unexpected_cfgs)] // `aes_force_soft` is the `aes` crate's cfg
pub(crate) fn available() -> bool {
    !cfg!(aes_force_soft)
        && std::arch::is_x86_feature_detected!("aes")
        && std::arch::is_x86_feature_detected!("sse2")
}

/// Round-key material: up to 15 round keys (AES-256). Wiped on drop, like
/// the `aes` crate's schedules (its `zeroize` feature is on).
struct RoundKeys([__m128i; 15]);

impl Drop for RoundKeys {
    fn drop(&mut self) {
        for k in &mut self.0 {
            // SAFETY: `k` is a valid, aligned, exclusively borrowed `__m128i`,
            // and all-zero bits are a valid `__m128i`. Volatile, so the wipe
            // is not optimised away.
            unsafe { std::ptr::write_volatile(k, std::mem::zeroed()) };
        }
    }
}

/// `RotWord(SubWord(x))` and `SubWord(x)` of a key-schedule word (bytes in
/// little-endian order, as in memory).
///
/// # Safety
/// The CPU must support AES-NI and SSE2.
#[target_feature(enable = "aes,sse2")]
unsafe fn sub_words(x: u32) -> (u32, u32) {
    let mut w = [0u32; 4];
    // SAFETY: AES-NI and SSE2 are available (the caller's contract); `w` is
    // 16 bytes, so the unaligned store is in bounds.
    unsafe {
        // `aeskeygenassist` on word 3 = x gives word 2 = SubWord(x) and
        // word 3 = RotWord(SubWord(x)) (with a zero round constant).
        let r = _mm_aeskeygenassist_si128::<0>(_mm_set_epi32(x as i32, 0, 0, 0));
        _mm_storeu_si128(w.as_mut_ptr().cast(), r);
    }
    (w[3], w[2])
}

/// Expand a 16-, 24- or 32-byte key (FIPS-197 §5.2).
///
/// # Safety
/// The CPU must support AES-NI and SSE2; `key.len()` must be 16, 24 or 32.
#[target_feature(enable = "aes,sse2")]
unsafe fn expand(key: &[u8]) -> RoundKeys {
    // SAFETY: same contract as this function.
    unsafe {
        match key.len() {
            16 => expand128(key),
            32 => expand256(key),
            _ => expand_words(key),
        }
    }
}

/// `k ⊕ (k << 32) ⊕ (k << 64) ⊕ (k << 96)`: each word XORed with all words
/// before it, as the key schedule chains `w[i] = w[i-Nk] ⊕ …`. (A macro, so
/// it expands inside the callers' AES-NI/SSE2 context.)
macro_rules! spread {
    ($k:expr) => {{
        let k = $k;
        let k = _mm_xor_si128(k, _mm_slli_si128::<4>(k));
        let k = _mm_xor_si128(k, _mm_slli_si128::<4>(k));
        _mm_xor_si128(k, _mm_slli_si128::<4>(k))
    }};
}

/// AES-128 key schedule, four words per step.
///
/// # Safety
/// The CPU must support AES-NI and SSE2; `key.len()` must be 16.
#[target_feature(enable = "aes,sse2")]
unsafe fn expand128(key: &[u8]) -> RoundKeys {
    assert_eq!(key.len(), 16);
    // SAFETY: AES-NI and SSE2 are available (the caller's contract); the
    // load reads the 16 key bytes.
    unsafe {
        let mut rk = RoundKeys([_mm_setzero_si128(); 15]);
        let mut k = _mm_loadu_si128(key.as_ptr().cast());
        rk.0[0] = k;
        macro_rules! step {
            ($i:literal, $rcon:literal) => {
                // Word 3 of aeskeygenassist = RotWord(SubWord(w3)) ⊕ rcon, broadcast.
                let t = _mm_shuffle_epi32::<0xff>(_mm_aeskeygenassist_si128::<$rcon>(k));
                k = _mm_xor_si128(spread!(k), t);
                rk.0[$i] = k;
            };
        }
        step!(1, 0x01);
        step!(2, 0x02);
        step!(3, 0x04);
        step!(4, 0x08);
        step!(5, 0x10);
        step!(6, 0x20);
        step!(7, 0x40);
        step!(8, 0x80);
        step!(9, 0x1b);
        step!(10, 0x36);
        rk
    }
}

/// AES-256 key schedule, four words per half step.
///
/// # Safety
/// The CPU must support AES-NI and SSE2; `key.len()` must be 32.
#[target_feature(enable = "aes,sse2")]
unsafe fn expand256(key: &[u8]) -> RoundKeys {
    assert_eq!(key.len(), 32);
    // SAFETY: AES-NI and SSE2 are available (the caller's contract); the
    // loads read the 32 key bytes.
    unsafe {
        let mut rk = RoundKeys([_mm_setzero_si128(); 15]);
        let mut k0 = _mm_loadu_si128(key.as_ptr().cast());
        let mut k1 = _mm_loadu_si128(key.as_ptr().add(16).cast());
        rk.0[0] = k0;
        rk.0[1] = k1;
        // Round key 2i comes from the last word of k1, 2i+1 from the last word of k0.
        macro_rules! even {
            ($i:literal, $rcon:literal) => {
                // w[8i]: RotWord(SubWord(last word)) ⊕ rcon.
                let t = _mm_shuffle_epi32::<0xff>(_mm_aeskeygenassist_si128::<$rcon>(k1));
                k0 = _mm_xor_si128(spread!(k0), t);
                rk.0[2 * $i] = k0;
            };
        }
        macro_rules! odd {
            ($i:literal) => {
                // w[8i+4]: SubWord(last word), no rotation, no rcon.
                let t = _mm_shuffle_epi32::<0xaa>(_mm_aeskeygenassist_si128::<0>(k0));
                k1 = _mm_xor_si128(spread!(k1), t);
                rk.0[2 * $i + 1] = k1;
            };
        }
        even!(1, 0x01);
        odd!(1);
        even!(2, 0x02);
        odd!(2);
        even!(3, 0x04);
        odd!(3);
        even!(4, 0x08);
        odd!(4);
        even!(5, 0x10);
        odd!(5);
        even!(6, 0x20);
        odd!(6);
        even!(7, 0x40);
        rk
    }
}

/// Any key size, word by word (used for AES-192).
///
/// # Safety
/// The CPU must support AES-NI and SSE2; `key.len()` must be 16, 24 or 32.
#[target_feature(enable = "aes,sse2")]
unsafe fn expand_words(key: &[u8]) -> RoundKeys {
    const RCON: [u32; 10] = [0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80, 0x1b, 0x36];
    let nk = key.len() / 4;
    let total = 4 * (nk + 7);
    let mut w = [0u32; 60];
    for (i, chunk) in key.chunks_exact(4).enumerate() {
        w[i] = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
    }
    for i in nk..total {
        let prev = w[i - 1];
        let t = if i % nk == 0 {
            // SAFETY: same contract as this function.
            unsafe { sub_words(prev) }.0 ^ RCON[i / nk - 1]
        } else if nk > 6 && i % nk == 4 {
            // SAFETY: same contract as this function.
            unsafe { sub_words(prev) }.1
        } else {
            prev
        };
        w[i] = w[i - nk] ^ t;
    }
    // SAFETY: SSE2 is available (the caller's contract); words 4j..4j+4 are
    // inside `w` (total <= 60), and on x86 the words' in-memory bytes are the
    // round key's bytes (little-endian).
    unsafe {
        let mut rk = RoundKeys([_mm_setzero_si128(); 15]);
        for (j, k) in rk.0.iter_mut().enumerate().take(total / 4) {
            *k = _mm_loadu_si128(w[4 * j..].as_ptr().cast());
        }
        rk
    }
}

/// One block: x ⊕ k0, NR-1 × aesenc, aesenclast.
macro_rules! encrypt_block {
    ($x:expr, $k:expr, $nr:expr) => {{
        let mut x = _mm_xor_si128($x, $k[0]);
        let mut r = 1;
        while r < $nr {
            x = _mm_aesenc_si128(x, $k[r]);
            r += 1;
        }
        _mm_aesenclast_si128(x, $k[$nr])
    }};
}

/// CBC-encrypt `data` with PKCS#7 padding into `out`.
///
/// # Safety
/// The CPU must support AES-NI and SSE2; `out.len()` must be
/// `AesCbc::padded_len(data.len())`.
#[target_feature(enable = "aes,sse2")]
unsafe fn cbc_encrypt<const NR: usize>(rk: &RoundKeys, iv: &[u8; 16], data: &[u8], out: &mut [u8]) {
    let k = &rk.0;
    let full = data.len() / 16;
    let tail = &data[full * 16..];
    let mut last = [(16 - tail.len()) as u8; 16];
    last[..tail.len()].copy_from_slice(tail);
    // SAFETY: AES-NI and SSE2 are available (the caller's contract). Loads
    // read blocks 0..full of `data` (16·full <= data.len()), `last` and `iv`
    // (16 bytes each); stores write blocks 0..=full of `out`, whose length is
    // 16·(full + 1) by the caller's contract.
    unsafe {
        let mut c = _mm_loadu_si128(iv.as_ptr().cast());
        let src = data.as_ptr();
        let dst = out.as_mut_ptr();
        for i in 0..full {
            let p = _mm_loadu_si128(src.add(16 * i).cast());
            c = encrypt_block!(_mm_xor_si128(p, c), k, NR);
            _mm_storeu_si128(dst.add(16 * i).cast(), c);
        }
        let p = _mm_loadu_si128(last.as_ptr().cast());
        c = encrypt_block!(_mm_xor_si128(p, c), k, NR);
        _mm_storeu_si128(dst.add(16 * full).cast(), c);
    }
}

/// CBC-encrypt with PKCS#7 padding into `out` (exactly the padded length).
/// Only call when [`available`] is true.
pub(crate) fn encrypt(p: &AesCbc<'_>, out: &mut [u8]) {
    assert!(available(), "AES-NI path used without AES-NI");
    assert!(
        matches!(p.key.len(), 16 | 24 | 32),
        "key length checked by the decoder"
    );
    assert_eq!(
        out.len(),
        AesCbc::padded_len(p.data.len()),
        "output sized by the caller"
    );
    // SAFETY: AES-NI and SSE2 were detected just above; the key length and
    // the output length are the ones `expand` and `cbc_encrypt` require.
    unsafe {
        let rk = expand(p.key);
        match p.key.len() {
            16 => cbc_encrypt::<10>(&rk, &p.iv, p.data, out),
            24 => cbc_encrypt::<12>(&rk, &p.iv, p.data, out),
            _ => cbc_encrypt::<14>(&rk, &p.iv, p.data, out),
        }
    }
}

/// CBC encryption without padding over whole blocks, in place, continuing
/// the chain across calls: the model `openssl speed` measures. For the
/// benchmark only; the op is [`encrypt`].
#[doc(hidden)]
pub struct RawCbcEncryptor {
    rk: RoundKeys,
    chain: [u8; 16],
    rounds: usize,
}

impl std::fmt::Debug for RawCbcEncryptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawCbcEncryptor")
            .field("rounds", &self.rounds)
            .finish_non_exhaustive()
    }
}

impl RawCbcEncryptor {
    /// `None` without AES-NI or with a key that is not 16, 24 or 32 bytes.
    pub fn new(key: &[u8], iv: [u8; 16]) -> Option<RawCbcEncryptor> {
        if !available() || !matches!(key.len(), 16 | 24 | 32) {
            return None;
        }
        // SAFETY: AES-NI and SSE2 detected, key length checked.
        let rk = unsafe { expand(key) };
        Some(RawCbcEncryptor {
            rk,
            chain: iv,
            rounds: key.len() / 4 + 6,
        })
    }

    /// Encrypt `buf` (a multiple of 16 bytes) in place.
    pub fn encrypt_blocks(&mut self, buf: &mut [u8]) {
        assert!(buf.len() % 16 == 0, "whole blocks only");
        // SAFETY: AES-NI and SSE2 were detected in `new`; the length is a
        // multiple of 16 as `cbc_blocks` requires.
        unsafe {
            match self.rounds {
                10 => cbc_blocks::<10>(&self.rk, &mut self.chain, buf),
                12 => cbc_blocks::<12>(&self.rk, &mut self.chain, buf),
                _ => cbc_blocks::<14>(&self.rk, &mut self.chain, buf),
            }
        }
    }
}

/// CBC-encrypt whole blocks in place, chaining from and updating `chain`.
///
/// # Safety
/// The CPU must support AES-NI and SSE2; `buf.len()` must be a multiple of 16.
#[target_feature(enable = "aes,sse2")]
unsafe fn cbc_blocks<const NR: usize>(rk: &RoundKeys, chain: &mut [u8; 16], buf: &mut [u8]) {
    let k = &rk.0;
    // SAFETY: AES-NI and SSE2 are available (the caller's contract); every
    // load and store is one of the len/16 whole blocks of `buf`, or `chain`.
    unsafe {
        let mut c = _mm_loadu_si128(chain.as_ptr().cast());
        let p = buf.as_mut_ptr();
        for i in 0..buf.len() / 16 {
            let x = _mm_loadu_si128(p.add(16 * i).cast());
            c = encrypt_block!(_mm_xor_si128(x, c), k, NR);
            _mm_storeu_si128(p.add(16 * i).cast(), c);
        }
        _mm_storeu_si128(chain.as_mut_ptr().cast(), c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(rk: &RoundKeys, n: usize) -> Vec<u8> {
        let mut out = vec![0u8; 16 * n];
        for (i, k) in rk.0.iter().take(n).enumerate() {
            // SAFETY: SSE2 is baseline on the test targets; the store writes
            // 16 bytes at offset 16·i of a 16·n-byte buffer.
            unsafe { _mm_storeu_si128(out[16 * i..].as_mut_ptr().cast(), *k) };
        }
        out
    }

    #[test]
    fn key_schedules_agree() {
        if !available() {
            return;
        }
        // FIPS-197 Appendix A.1: the last round key of the AES-128 example.
        let key: Vec<u8> = (0..16)
            .map(|i| {
                u8::from_str_radix(&"2b7e151628aed2a6abf7158809cf4f3c"[2 * i..2 * i + 2], 16)
                    .unwrap()
            })
            .collect();
        // SAFETY: AES-NI and SSE2 checked above; the key is 16 bytes.
        let rk = unsafe { expand128(&key) };
        assert_eq!(
            bytes(&rk, 11)[160..],
            [
                0xd0, 0x14, 0xf9, 0xa8, 0xc9, 0xee, 0x25, 0x89, 0xe1, 0x3f, 0x0c, 0xc8, 0xb6, 0x63,
                0x0c, 0xa6
            ]
        );
        // The specialised schedules match the word-by-word one.
        let mut x = 0x1234_5678_9abc_def0u64;
        for _ in 0..200 {
            let key: Vec<u8> = (0..32)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            // SAFETY: AES-NI and SSE2 checked above; key lengths 16 and 32.
            unsafe {
                assert_eq!(
                    bytes(&expand128(&key[..16]), 11),
                    bytes(&expand_words(&key[..16]), 11)
                );
                assert_eq!(bytes(&expand256(&key), 15), bytes(&expand_words(&key), 15));
            }
        }
    }
}
