//! Dense layers: `W x` for one record or a batch.
//!
//! A dense layer reads each weight once per record, so it is bound by
//! memory, not by multiplies: the kernel streams each weight row once and
//! multiplies it into up to [`RECORDS`] records at a time, with [`LANES`]
//! partial sums per output that the compiler keeps in one vector.

use super::Scalar;
use super::par;
use super::simd::{Isa, Kernel};

/// Partial sums per dot product: element `c` of a row goes to lane `c % LANES`.
const LANES: usize = 8;
/// Records that share one pass over a weight row.
const RECORDS: usize = 4;
/// Weight rows per task when the layer uses every core.
const ROWS_PER_TASK: usize = 32;

/// `y = W x` for `W` of shape `[rows, cols]` (row-major) and `x` of `cols`.
///
/// Each output is summed in a fixed order: `LANES` interleaved partial sums
/// over the first `cols - cols % 8` columns, added in lane order, then the
/// rest in order (exact in the ring; in `f64` a reassociation of the plain
/// sum). Layers of at least [`super::PARALLEL_MACS`] use every core.
pub fn matvec<T: Scalar>(w: &[T], rows: usize, cols: usize, x: &[T]) -> Vec<T> {
    assert_eq!(x.len(), cols, "input size");
    matvec_batch(w, rows, cols, x)
}

/// [`matvec`] of each of the consecutive records in `xs` (`cols` each),
/// outputs consecutive (`rows` each): the product `X W^T` of a batch.
pub fn matvec_batch<T: Scalar>(w: &[T], rows: usize, cols: usize, xs: &[T]) -> Vec<T> {
    matvec_batch_on(Isa::best(), w, rows, cols, xs)
}

/// [`matvec_batch`] compiled for `isa` (the baseline when this CPU lacks
/// it); the result is the same on every one.
pub fn matvec_batch_on<T: Scalar>(isa: Isa, w: &[T], rows: usize, cols: usize, xs: &[T]) -> Vec<T> {
    assert_eq!(w.len(), rows * cols, "weight size");
    assert!(xs.len().is_multiple_of(cols), "input size");
    let records = xs.len().checked_div(cols).unwrap_or(1);
    let mut out = vec![T::default(); records * rows];
    if rows == 0 || records == 0 {
        return out;
    }
    let macs = w.len().saturating_mul(records);
    let per = if par::workers(macs) > 1 {
        ROWS_PER_TASK
    } else {
        rows
    };
    let mut tasks: Vec<Rows<'_, T>> = (0..rows.div_ceil(per))
        .map(|t| Rows {
            w: &w[t * per * cols..(t * per + per).min(rows) * cols],
            cols,
            xs,
            out: Vec::with_capacity(records),
        })
        .collect();
    for (_, t, y) in par::pieces(&mut out, rows, per) {
        tasks[t].out.push(y);
    }
    par::run_all(isa, macs, tasks);
    out
}

/// One task: a band of weight rows times every record.
struct Rows<'a, T> {
    /// The band's rows, `cols` each.
    w: &'a [T],
    cols: usize,
    /// Every record, `cols` each.
    xs: &'a [T],
    /// Per record, its outputs for the band's rows.
    out: Vec<&'a mut [T]>,
}

impl<T: Scalar> Kernel for Rows<'_, T> {
    type Output = ();

    #[inline(always)]
    fn run(mut self) {
        let cols = self.cols;
        if cols == 0 {
            return;
        }
        let records: Vec<&[T]> = self.xs.chunks_exact(cols).collect();
        let full = records.len() - records.len() % RECORDS;
        for (r, row) in self.w.chunks_exact(cols).enumerate() {
            for (b0, group) in records[..full].chunks_exact(RECORDS).enumerate() {
                let sums = dots::<T, RECORDS>(row, std::array::from_fn(|i| group[i]));
                for (i, s) in sums.into_iter().enumerate() {
                    self.out[b0 * RECORDS + i][r] = s;
                }
            }
            for (b, x) in records.iter().enumerate().skip(full) {
                self.out[b][r] = dots::<T, 1>(row, [x])[0];
            }
        }
    }
}

/// The dot products of `w` with each of `xs` (all as long as `w`).
#[inline(always)]
fn dots<T: Scalar, const R: usize>(w: &[T], xs: [&[T]; R]) -> [T; R] {
    let body = w.len() - w.len() % LANES;
    let xs = xs.map(|x| &x[..w.len()]);
    let mut acc = [[T::default(); LANES]; R];
    for (c, wv) in w[..body].chunks_exact(LANES).enumerate() {
        std::hint::black_box(()); // see `tile::tile`
        for (a, x) in acc.iter_mut().zip(&xs) {
            let xv = &x[c * LANES..][..LANES];
            for l in 0..LANES {
                a[l] = a[l].add(wv[l].mul(xv[l]));
            }
        }
    }
    std::array::from_fn(|i| {
        let lanes = acc[i].iter().fold(T::default(), |s, v| s.add(*v));
        w[body..]
            .iter()
            .zip(&xs[i][body..])
            .fold(lanes, |s, (a, b)| s.add(a.mul(*b)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::PARALLEL_MACS;
    use crate::kernels::testing::{dense_by_definition, on_threads, small_f64, values};

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(300))]
        /// Any shape (columns around the lane count, records around the
        /// group of four, empty layers) on full-range ring values, on every
        /// instruction set: exactly the definition.
        #[test]
        fn dense_equals_its_definition(
            rows in 0usize..20,
            cols in 1usize..40,
            records in 1usize..10,
            seed in proptest::prelude::any::<u64>(),
        ) {
            let w = values(seed, rows * cols);
            let xs = values(!seed, records * cols);
            let want = dense_by_definition(&w, cols, &xs);
            for isa in Isa::available() {
                proptest::prop_assert_eq!(&matvec_batch_on(isa, &w, rows, cols, &xs), &want);
            }
            let f = small_f64(seed, rows * cols, 20);
            let fx = small_f64(!seed, records * cols, 20);
            for isa in Isa::available() {
                proptest::prop_assert_eq!(matvec_batch_on(isa, &f, rows, cols, &fx), dense_by_definition(&f, cols, &fx));
            }
        }
    }

    /// A layer large enough to use every core, on one thread and several:
    /// exact in the ring; in `f64` the same bits whatever the split.
    #[test]
    fn large_dense_layer_is_exact_and_split_independent() {
        let (rows, cols, records) = (301, 2000, 3);
        assert!(rows * cols * records >= PARALLEL_MACS);
        let w = values(1, rows * cols);
        let xs = values(2, records * cols);
        let want = dense_by_definition(&w, cols, &xs);
        for threads in [1, 3] {
            assert_eq!(
                on_threads(threads, || matvec_batch(&w, rows, cols, &xs)),
                want
            );
        }
        let f: Vec<f64> = w.iter().map(|v| *v as f64 / 1e19 - 0.9).collect();
        let fx: Vec<f64> = xs.iter().map(|v| *v as f64 / 3e18).collect();
        let one = on_threads(1, || matvec_batch_on(Isa::Baseline, &f, rows, cols, &fx));
        for isa in Isa::available() {
            let many = on_threads(3, || matvec_batch_on(isa, &f, rows, cols, &fx));
            assert!(
                one.iter()
                    .zip(&many)
                    .all(|(a, b)| a.to_bits() == b.to_bits())
            );
        }
        for (a, b) in one.iter().zip(dense_by_definition(&f, cols, &fx)) {
            assert!((a - b).abs() <= 1e-12 * (1.0 + b.abs()), "{a} vs {b}");
        }
    }

    /// `matvec` is `matvec_batch` of one record; degenerate shapes give
    /// zeros or nothing, never a panic.
    #[test]
    fn single_record_and_degenerate_shapes() {
        let w = values(3, 7 * 9);
        let x = values(4, 9);
        assert_eq!(matvec(&w, 7, 9, &x), matvec_batch(&w, 7, 9, &x));
        assert_eq!(matvec::<u64>(&[], 0, 9, &x), Vec::<u64>::new());
        assert_eq!(matvec::<u64>(&[], 3, 0, &[]), vec![0; 3]);
        assert!(matvec_batch(&w, 7, 9, &[]).is_empty());
    }
}
