//! The register-tiled micro-kernel every convolution product ends in.
//!
//! It multiplies an `MR`-lane panel of packed input (`[k][lane]`, so one
//! `k` step is one vector load) by `NR` weight rows read where they lie
//! (one broadcast each per step), keeping the `NR x MR` sums in registers
//! across the whole `k` range. Compiled for AVX-512 the `MR` lanes are one
//! vector and the sums take 6 of the 32 vector registers. The shape was
//! measured against 4x4, 8x4, 8x8, 16x4 to 16x8 and 24x4: 8x6 is fastest
//! for both `u64` and `f64` (wider tiles make the compiler vectorize
//! across `k` instead). Walking the rows with zipped iterators leaves the
//! loop without bounds checks, and reading them in place leaves the
//! weights unpacked, which pays on small maps (7x7: 49 pixels per weight).

use super::Scalar;

/// Lanes of the packed input per tile (output pixels).
pub(crate) const MR: usize = 8;
/// Weight rows per tile (output channels).
pub(crate) const NR: usize = 6;

/// `acc[j][i] = sum over p of rows[j][p] * lanes[p * MR + i]`, summed in
/// increasing `p`, for as many `p` as the panel and the rows hold.
#[inline(always)]
pub(crate) fn tile<T: Scalar>(lanes: &[T], rows: [&[T]; NR]) -> [[T; MR]; NR] {
    let mut acc = [[T::default(); MR]; NR];
    let [r0, r1, r2, r3, r4, r5] = rows;
    let steps = lanes
        .chunks_exact(MR)
        .zip(r0)
        .zip(r1)
        .zip(r2)
        .zip(r3)
        .zip(r4)
        .zip(r5);
    for ((((((l, a), b), c), d), e), f) in steps {
        // An empty barrier: without it the compiler vectorizes the ring's
        // sums across `p` (gathers, sums spilled to the stack, 3x slower)
        // instead of across the `MR` lanes. It emits no instruction.
        std::hint::black_box(());
        let r = [*a, *b, *c, *d, *e, *f];
        for j in 0..NR {
            for i in 0..MR {
                acc[j][i] = acc[j][i].add(l[i].mul(r[j]));
            }
        }
    }
    acc
}
