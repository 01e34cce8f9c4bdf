//! The length-doubling PRG of the DCF tree: fixed-key AES-128 in the
//! Matyas-Meyer-Oseas mode, `H(x) = AES_k(x) ^ x`, with a public fixed key.
//!
//! A seed `s` (128 bits, its two low bits cleared) expands to as many blocks
//! as a level needs: block `j` is `H(s ^ tweak(j))`, with the index `j` in
//! the high half so that it never meets the seed's cleared bits. In the
//! random-permutation model (the standard assumption for fixed-key AES, as in
//! Guo et al., S&P 2020, and every FSS implementation since) these blocks are
//! pseudo-random whenever `s` is uniform. AES runs through the `aes` crate,
//! which picks AES-NI at run time; callers hand it whole batches of blocks so
//! that its eight-block pipeline stays full.

use aes::Aes128;
use aes::cipher::{Array, BlockCipherEncrypt, KeyInit};

/// The public AES key of the PRG: the first 16 bytes of the fractional part
/// of pi, a nothing-up-my-sleeve constant.
const FIXED_KEY: [u8; 16] = [
    0x24, 0x3f, 0x6a, 0x88, 0x85, 0xa3, 0x08, 0xd3, 0x13, 0x19, 0x8a, 0x2e, 0x03, 0x70, 0x73, 0x44,
];

/// Mask clearing the two low bits of a seed (they carry the control bit and,
/// for one-bit payloads, the payload bit of an expansion).
pub(crate) const SEED_MASK: u128 = !3;

/// The fixed-key AES hash every expansion runs through.
pub(crate) struct FixedAes {
    aes: Aes128,
}

impl FixedAes {
    pub(crate) fn new() -> Self {
        Self {
            aes: Aes128::new(&Array::from(FIXED_KEY)),
        }
    }

    /// The tweak of block `j` of an expansion.
    #[inline]
    pub(crate) fn tweak(j: usize) -> u128 {
        (j as u128) << 64
    }

    /// Replaces every `x` in `blocks` by `AES_k(x) ^ x`, in batches of `buf`'s size.
    pub(crate) fn hash(&self, blocks: &mut [u128], buf: &mut Vec<[u8; 16]>) {
        buf.clear();
        buf.extend(blocks.iter().map(|x| x.to_le_bytes()));
        self.aes
            .encrypt_blocks(Array::cast_slice_from_core_mut(buf.as_mut_slice()));
        for (x, y) in blocks.iter_mut().zip(buf.iter()) {
            *x ^= u128::from_le_bytes(*y);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aes_matches_the_fips_197_known_answer() {
        // FIPS-197 appendix C.1: AES-128 of 00112233...ff under key 00010203...0f.
        let key: [u8; 16] = std::array::from_fn(|i| i as u8);
        let pt: [u8; 16] = std::array::from_fn(|i| (i as u8) * 0x11);
        let mut block = Array::from(pt);
        Aes128::new(&Array::from(key)).encrypt_block(&mut block);
        let want = [
            0x69, 0xc4, 0xe0, 0xd8, 0x6a, 0x7b, 0x04, 0x30, 0xd8, 0xcd, 0xb7, 0x80, 0x70, 0xb4,
            0xc5, 0x5a,
        ];
        assert_eq!(<[u8; 16]>::from(block), want);
    }

    #[test]
    fn hash_is_aes_xor_input_and_tweaks_differ() {
        let f = FixedAes::new();
        let mut v = vec![5u128 ^ FixedAes::tweak(0), 5 ^ FixedAes::tweak(1)];
        let mut buf = Vec::new();
        f.hash(&mut v, &mut buf);
        let mut one = Array::from((5u128).to_le_bytes());
        f.aes.encrypt_block(&mut one);
        assert_eq!(v[0], u128::from_le_bytes(one.into()) ^ 5);
        assert_ne!(v[0], v[1]);
    }
}
