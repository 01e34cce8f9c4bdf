//! Numbers for CryptMed: the ring Z_2^64, fixed-point encoding, bit-sliced
//! packing and the clear-text tensor kernels (matrix product, convolution,
//! pooling windows) that both the secure protocols and the plaintext
//! reference run.
//!
//! This crate knows nothing of randomness, parties or I/O.

pub mod bits;
pub mod fixed;
pub mod kernels;

pub use fixed::{FixedError, FixedPoint};

/// One element of the ring Z_2^64. All arithmetic on it wraps.
///
/// The ring width lives in this one alias (and [`RING_BITS`]) so that a
/// narrower ring can be tried later by changing it here.
pub type Elem = u64;

/// Number of bits of an [`Elem`].
pub const RING_BITS: u32 = 64;

/// Number of bytes of an [`Elem`] on the wire.
pub const ELEM_BYTES: usize = 8;

/// The most significant bit of `x` (1 when `x`, read as two's complement, is negative).
#[inline]
pub fn msb(x: Elem) -> Elem {
    x >> (RING_BITS - 1)
}

/// Reads `x` as a two's-complement signed integer.
#[inline]
pub fn signed(x: Elem) -> i64 {
    x as i64
}

/// Writes a slice of ring elements as little-endian bytes.
pub fn elems_to_bytes(xs: &[Elem], out: &mut Vec<u8>) {
    out.reserve(xs.len() * ELEM_BYTES);
    for x in xs {
        out.extend_from_slice(&x.to_le_bytes());
    }
}

/// Reads little-endian bytes back into ring elements; `bytes.len()` must be a
/// multiple of [`ELEM_BYTES`] (trailing bytes are ignored).
pub fn bytes_to_elems(bytes: &[u8]) -> Vec<Elem> {
    bytes
        .chunks_exact(ELEM_BYTES)
        .map(|c| {
            let mut b = [0u8; ELEM_BYTES];
            b.copy_from_slice(c);
            Elem::from_le_bytes(b)
        })
        .collect()
}

/// Element-wise wrapping sum `a + b`.
pub fn add(a: &[Elem], b: &[Elem]) -> Vec<Elem> {
    debug_assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| x.wrapping_add(*y)).collect()
}

/// Element-wise wrapping difference `a - b`.
pub fn sub(a: &[Elem], b: &[Elem]) -> Vec<Elem> {
    debug_assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| x.wrapping_sub(*y)).collect()
}

/// In-place wrapping `a += b`.
pub fn add_assign(a: &mut [Elem], b: &[Elem]) {
    debug_assert_eq!(a.len(), b.len());
    for (x, y) in a.iter_mut().zip(b) {
        *x = x.wrapping_add(*y);
    }
}

/// In-place wrapping `a -= b`.
pub fn sub_assign(a: &mut [Elem], b: &[Elem]) {
    debug_assert_eq!(a.len(), b.len());
    for (x, y) in a.iter_mut().zip(b) {
        *x = x.wrapping_sub(*y);
    }
}
