//! The register-tiled micro-kernel every matrix product here ends in.
//!
//! It multiplies an `MR`-lane panel of the right-hand operand (packed
//! `[k][lane]`, so one `k` step is one vector load) by an `NR`-row panel of
//! the left-hand operand (packed `[k][row]`, one broadcast per row),
//! keeping the `NR x MR` sums in registers across the whole `k` range. Both
//! panels are walked as exact chunks, so the loop has no bounds checks
//! (with the rows read in place it had, and ran at half the speed). Compiled for
//! AVX-512 the `MR` lanes are one vector and the tile fills 6 of the 32
//! vector registers with sums; the shape was measured against 4x4, 8x4,
//! 8x8, 16x4..16x8 and 24x4 (8x6 is fastest for both `u64` and `f64`; wider
//! tiles make the compiler vectorize across `k` instead).

use super::Scalar;

/// Lanes of the packed operand per tile (outputs along a row).
pub(crate) const MR: usize = 8;
/// Rows of the unpacked operand per tile.
pub(crate) const NR: usize = 6;

/// `acc[j][i] = sum over p of rows[p * NR + j] * lanes[p * MR + i]`,
/// summed in increasing `p` (as many `p` as both panels hold).
#[inline(always)]
pub(crate) fn tile<T: Scalar>(lanes: &[T], rows: &[T]) -> [[T; MR]; NR] {
    let mut acc = [[T::default(); MR]; NR];
    for (l, r) in lanes.chunks_exact(MR).zip(rows.chunks_exact(NR)) {
        // An empty barrier: without it the compiler vectorizes the ring's
        // sums across `p` (gathers, sums spilled to the stack, 3x slower)
        // instead of across the `MR` lanes. It emits no instruction.
        std::hint::black_box(());
        for j in 0..NR {
            for i in 0..MR {
                acc[j][i] = acc[j][i].add(l[i].mul(r[j]));
            }
        }
    }
    acc
}

/// Packs `rows` (each read from `k0` for `kc` elements, in `w` of row
/// length `k_len`) as a `[k][row]` panel for [`tile`]; a short panel
/// repeats its last row (whose sums the caller drops).
#[inline(always)]
pub(crate) fn pack_rows<T: Scalar>(
    w: &[T],
    k_len: usize,
    rows: std::ops::Range<usize>,
    k0: usize,
    dst: &mut [T],
) {
    let last = rows.end - 1;
    for j in 0..NR {
        let r = (rows.start + j).min(last);
        let src = &w[r * k_len + k0..][..dst.len() / NR];
        for (d, v) in dst[j..].iter_mut().step_by(NR).zip(src) {
            *d = *v;
        }
    }
}
