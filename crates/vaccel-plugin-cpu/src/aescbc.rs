//! AES_CBC_ENCRYPT / AES_CBC_DECRYPT with PKCS#7 padding, on RustCrypto
//! `aes` + `cbc`.
//!
//! On x86/x86_64 the `aes` crate picks AES-NI at run time (it probes CPUID
//! through `cpufeatures`) and falls back to its constant-time bitsliced
//! software implementation; [`aes_backend`] reports the same decision. Where
//! AES-NI is there, encryption runs in this crate's register-resident CBC
//! loop (`aesni`), which is ~20% faster than `cbc` over run-time-dispatched
//! `aes`; decryption always uses RustCrypto.
//!
//! CBC is not authenticated: a caller that lets an attacker submit
//! ciphertexts and observe padding errors has a padding oracle. Pair it with
//! a MAC where that matters.

use aes::cipher::block_padding::{NoPadding, Padding, Pkcs7};
use aes::cipher::consts::U16;
use aes::cipher::generic_array::GenericArray;
use aes::cipher::{
    BlockCipher, BlockDecrypt, BlockDecryptMut, BlockEncryptMut, BlockSizeUser, InnerIvInit,
    KeyInit, KeyIvInit,
};
use vaccel_core::ops::{self, AesCbc};
use vaccel_core::{Arg, ArgOut, Error, OpType, Result};

/// Which AES implementation runs: `aes-ni`, `armv8` or `soft`.
///
/// On x86/x86_64 this is the `aes` crate's own run-time choice (CPUID, unless
/// built with `--cfg aes_force_soft`); on aarch64 the `aes` crate 0.8 uses
/// the ARMv8 instructions only when built with `--cfg aes_armv8`.
#[allow(unexpected_cfgs)] // `aes_armv8` / `aes_force_soft` are the `aes` crate's cfgs
pub fn aes_backend() -> &'static str {
    #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
    if crate::aesni::available() {
        return "aes-ni";
    }
    #[cfg(all(target_arch = "aarch64", aes_armv8, not(aes_force_soft)))]
    if std::arch::is_aarch64_feature_detected!("aes") {
        return "armv8";
    }
    "soft"
}

const BAD_PADDING: &str =
    "aes-cbc decrypt: bad PKCS#7 padding (wrong key or IV, or corrupted data)";

fn bad_key(len: usize) -> Error {
    Error::inval(format!(
        "aes-cbc: key must be 16, 24 or 32 bytes (AES-128/192/256), got {len}"
    ))
}

/// AES_CBC_ENCRYPT: write 0 gets the PKCS#7-padded ciphertext.
pub(crate) fn encrypt(read: &[Arg<'_>], write: &mut [ArgOut<'_>]) -> Result<()> {
    let op = OpType::AesCbcEncrypt;
    let p = AesCbc::decode(op, read)?;
    let buf = ops::out(op, write, 0, "output")?.reserve(AesCbc::padded_len(p.data.len()))?;
    #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
    if crate::aesni::available() && matches!(p.key.len(), 16 | 24 | 32) {
        crate::aesni::encrypt(&p, buf);
        return Ok(());
    }
    encrypt_portable(&p, buf)
}

/// Encryption through RustCrypto `cbc` (every platform).
pub(crate) fn encrypt_portable(p: &AesCbc<'_>, buf: &mut [u8]) -> Result<()> {
    match p.key.len() {
        16 => encrypt_with::<aes::Aes128>(p, buf),
        24 => encrypt_with::<aes::Aes192>(p, buf),
        32 => encrypt_with::<aes::Aes256>(p, buf),
        n => Err(bad_key(n)),
    }
}

fn encrypt_with<C>(p: &AesCbc<'_>, buf: &mut [u8]) -> Result<()>
where
    C: BlockEncryptMut + BlockCipher + BlockSizeUser<BlockSize = U16> + KeyInit,
{
    let enc =
        cbc::Encryptor::<C>::new_from_slices(p.key, &p.iv).map_err(|_| bad_key(p.key.len()))?;
    // Plaintext straight into the output buffer: one pass, no copies.
    let n = enc
        .encrypt_padded_b2b_mut::<Pkcs7>(p.data, buf)
        .map_err(|_| Error::backend("aes-cbc encrypt: output buffer size mismatch"))?
        .len();
    debug_assert_eq!(n, buf.len());
    Ok(())
}

/// AES_CBC_DECRYPT: write 0 gets the plaintext with the padding removed.
pub(crate) fn decrypt(read: &[Arg<'_>], write: &mut [ArgOut<'_>]) -> Result<()> {
    let p = AesCbc::decode(OpType::AesCbcDecrypt, read)?;
    match p.key.len() {
        16 => decrypt_with::<aes::Aes128>(&p, write),
        24 => decrypt_with::<aes::Aes192>(&p, write),
        32 => decrypt_with::<aes::Aes256>(&p, write),
        n => Err(bad_key(n)),
    }
}

/// Decrypts the last block first: it carries the padding, so the exact
/// plaintext length is known (and bad padding is reported) before anything
/// is written, and the output buffer needs no slack. The other blocks then
/// go straight from the input to the output.
fn decrypt_with<C>(p: &AesCbc<'_>, write: &mut [ArgOut<'_>]) -> Result<()>
where
    C: BlockDecrypt + BlockDecryptMut + BlockCipher + BlockSizeUser<BlockSize = U16> + KeyInit,
{
    let cipher = C::new_from_slice(p.key).map_err(|_| bad_key(p.key.len()))?;
    // The decoder guarantees a non-zero multiple of 16 bytes.
    let head_len = p.data.len() - 16;
    let (head, last) = p.data.split_at(head_len);
    let prev: &[u8] = if head_len == 0 {
        &p.iv
    } else {
        &head[head_len - 16..]
    };
    let mut block = GenericArray::clone_from_slice(last);
    cipher.decrypt_block(&mut block);
    block.iter_mut().zip(prev).for_each(|(b, x)| *b ^= x);
    let tail = <Pkcs7 as Padding<U16>>::unpad(&block).map_err(|_| Error::inval(BAD_PADDING))?;

    let buf =
        ops::out(OpType::AesCbcDecrypt, write, 0, "output")?.reserve(head_len + tail.len())?;
    let (out_head, out_tail) = buf.split_at_mut(head_len);
    if head_len > 0 {
        cbc::Decryptor::<C>::inner_iv_init(cipher, GenericArray::from_slice(&p.iv))
            .decrypt_padded_b2b_mut::<NoPadding>(head, out_head)
            .map_err(|_| Error::backend("aes-cbc decrypt: output buffer size mismatch"))?;
    }
    out_tail.copy_from_slice(tail);
    Ok(())
}
