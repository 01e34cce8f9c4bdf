//! The register-tiled micro-kernel every matrix product here ends in.
//!
//! It multiplies an `MR`-lane panel of the right-hand operand (packed
//! `[k][lane]`, so one `k` step is one vector load) by `NR` rows of the
//! left-hand operand read where they lie (one broadcast each), keeping the
//! `NR x MR` sums in registers across the whole `k` range. Compiled for
//! AVX-512 the `MR` lanes are one vector and the tile fills 6 of the 32
//! vector registers with sums; the shape was measured against 4x4, 8x4,
//! 8x8, 16x4..16x8 and 24x4 (8x6 is fastest for both `u64` and `f64`; wider
//! tiles make the compiler vectorize across `k` instead).

use super::Scalar;

/// Lanes of the packed operand per tile (outputs along a row).
pub(crate) const MR: usize = 8;
/// Rows of the unpacked operand per tile.
pub(crate) const NR: usize = 6;

/// `acc[j][i] = sum over p < kc of rows[j][p] * packed[p * MR + i]`, summed
/// in increasing `p`.
#[inline(always)]
pub(crate) fn tile<T: Scalar>(kc: usize, packed: &[T], rows: [&[T]; NR]) -> [[T; MR]; NR] {
    let mut acc = [[T::default(); MR]; NR];
    let packed = &packed[..kc * MR];
    let rows = rows.map(|r| &r[..kc]);
    for (p, lanes) in packed.chunks_exact(MR).enumerate() {
        for j in 0..NR {
            let b = rows[j][p];
            for i in 0..MR {
                acc[j][i] = acc[j][i].add(lanes[i].mul(b));
            }
        }
    }
    acc
}
