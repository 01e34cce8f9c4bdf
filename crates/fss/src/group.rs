//! Output groups of a DCF: the ring Z_2^64 (arithmetic shares, payload
//! vectors of any width) and GF(2) (XOR shares of one bit).
//!
//! Elements are held in `u64`s either way (a GF(2) element is 0 or 1), so
//! the tree code is written once; what differs is the arithmetic, where a
//! level's payload comes from in the PRG's output, and how many bits an
//! element takes in a key.

/// An abelian group of DCF outputs.
pub trait Group: Send + Sync + 'static {
    /// Bits one element takes in a key.
    const BITS: usize;
    /// Short name for reports.
    const NAME: &'static str;

    /// `a + b`.
    fn add(a: u64, b: u64) -> u64;
    /// `-a`.
    fn neg(a: u64) -> u64;
    /// `-a` when `negate`, else `a`, without a branch on `negate` (a
    /// secret control bit in key generation).
    fn select_neg(a: u64, negate: bool) -> u64;
    /// `a - b`.
    fn sub(a: u64, b: u64) -> u64 {
        Self::add(a, Self::neg(b))
    }

    /// AES blocks one side's payload of `width` elements takes beyond the
    /// seed block (0 when it rides in the seed block's spare bit).
    fn payload_blocks(width: usize) -> usize;

    /// One side's payload (`out.len()` elements) from the side's seed block
    /// (before its low bits are cleared) and its payload blocks.
    fn payload(seed_block: u128, blocks: &[u128], out: &mut [u64]);

    /// Writes `v` packed, `BITS` bits per element, appending to `out`.
    fn write(v: &[u64], out: &mut Vec<u8>);

    /// Element `i` of a packed run written by [`write`](Self::write).
    fn read(bytes: &[u8], i: usize) -> u64;

    /// Bytes of `count` packed elements.
    fn packed_bytes(count: usize) -> usize {
        (count * Self::BITS).div_ceil(8)
    }

    /// Checks a payload width this group supports.
    fn check_width(width: usize) -> bool;
}

/// The ring Z_2^64: wrapping arithmetic, arithmetic shares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ring {}

impl Group for Ring {
    const BITS: usize = 64;
    const NAME: &'static str = "Z_2^64";

    #[inline]
    fn add(a: u64, b: u64) -> u64 {
        a.wrapping_add(b)
    }

    #[inline]
    fn neg(a: u64) -> u64 {
        a.wrapping_neg()
    }

    /// `(a ^ m) - m` with `m` all ones or zero: two's complement negation.
    #[inline]
    fn select_neg(a: u64, negate: bool) -> u64 {
        let m = u64::from(negate).wrapping_neg();
        (a ^ m).wrapping_sub(m)
    }

    fn payload_blocks(width: usize) -> usize {
        width.div_ceil(2)
    }

    #[inline]
    fn payload(_: u128, blocks: &[u128], out: &mut [u64]) {
        for (i, o) in out.iter_mut().enumerate() {
            *o = (blocks[i / 2] >> (64 * (i % 2))) as u64;
        }
    }

    fn write(v: &[u64], out: &mut Vec<u8>) {
        for x in v {
            out.extend_from_slice(&x.to_le_bytes());
        }
    }

    #[inline]
    fn read(bytes: &[u8], i: usize) -> u64 {
        let mut b = [0u8; 8];
        b.copy_from_slice(&bytes[8 * i..8 * i + 8]);
        u64::from_le_bytes(b)
    }

    fn check_width(width: usize) -> bool {
        width >= 1
    }
}

/// GF(2): XOR, one-bit payloads (XOR shares of a comparison bit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Xor {}

impl Group for Xor {
    const BITS: usize = 1;
    const NAME: &'static str = "GF(2)";

    #[inline]
    fn add(a: u64, b: u64) -> u64 {
        (a ^ b) & 1
    }

    #[inline]
    fn neg(a: u64) -> u64 {
        a & 1
    }

    #[inline]
    fn select_neg(a: u64, _: bool) -> u64 {
        a & 1
    }

    fn payload_blocks(_: usize) -> usize {
        0
    }

    /// The payload bit is bit 1 of the seed block (bit 0 is the control bit).
    #[inline]
    fn payload(seed_block: u128, _: &[u128], out: &mut [u64]) {
        out[0] = ((seed_block >> 1) & 1) as u64;
    }

    fn write(v: &[u64], out: &mut Vec<u8>) {
        let start = out.len();
        out.resize(start + v.len().div_ceil(8), 0);
        for (i, x) in v.iter().enumerate() {
            out[start + i / 8] |= ((x & 1) as u8) << (i % 8);
        }
    }

    #[inline]
    fn read(bytes: &[u8], i: usize) -> u64 {
        u64::from(bytes[i / 8] >> (i % 8) & 1)
    }

    fn check_width(width: usize) -> bool {
        width == 1
    }
}
