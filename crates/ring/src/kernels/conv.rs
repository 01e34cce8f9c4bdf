//! 2-D convolution over CHW tensors: its geometry and the kernel that runs it.
//!
//! Depthwise convolutions (one input channel per output channel) run as a
//! per-channel stencil ([`super::stencil`]); every other one as a matrix
//! product over an implicit im2col matrix ([`super::im2col`]). Work is cut
//! into blocks of (record, group, output channels, output pixels) that run
//! on all cores when the layer is large ([`super::PARALLEL_MACS`]).

use serde::{Deserialize, Serialize};

use super::im2col::{self, NB};
use super::par;
use super::simd::Isa;
use super::stencil;
use super::tile::{MR, NR};
use super::{Scalar, out_len};

/// Shape and hyper-parameters of a 2-D convolution over one CHW tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Conv2dGeom {
    /// Input channels.
    pub in_ch: usize,
    /// Input height.
    pub in_h: usize,
    /// Input width.
    pub in_w: usize,
    /// Output channels.
    pub out_ch: usize,
    /// Kernel height and width.
    pub kernel: [usize; 2],
    /// Stride along height and width.
    pub stride: [usize; 2],
    /// Zero padding: top, left, bottom, right.
    pub pads: [usize; 4],
    /// Dilation along height and width.
    pub dilation: [usize; 2],
    /// Channel groups (1 for an ordinary convolution).
    pub groups: usize,
}

impl Conv2dGeom {
    /// Output height.
    pub fn out_h(&self) -> usize {
        out_len(
            self.in_h,
            self.kernel[0],
            self.stride[0],
            self.pads[0].saturating_add(self.pads[2]),
            self.dilation[0],
        )
    }

    /// Output width.
    pub fn out_w(&self) -> usize {
        out_len(
            self.in_w,
            self.kernel[1],
            self.stride[1],
            self.pads[1].saturating_add(self.pads[3]),
            self.dilation[1],
        )
    }

    /// Number of input elements (saturating, like every size here).
    pub fn in_len(&self) -> usize {
        self.in_ch
            .saturating_mul(self.in_h)
            .saturating_mul(self.in_w)
    }

    /// Number of output elements.
    pub fn out_len(&self) -> usize {
        self.out_ch
            .saturating_mul(self.out_h())
            .saturating_mul(self.out_w())
    }

    /// Number of weights: `out_ch * in_ch/groups * kh * kw` (0 for 0 groups).
    pub fn weight_len(&self) -> usize {
        self.out_ch
            .saturating_mul(self.in_ch.checked_div(self.groups).unwrap_or(0))
            .saturating_mul(self.kernel[0])
            .saturating_mul(self.kernel[1])
    }

    /// True when the geometry can run: every size, stride and dilation at
    /// least 1, groups dividing both channel counts. Validation refuses
    /// the others before a kernel runs; [`Conv2dGeom::apply`] returns
    /// zeros for them rather than divide by zero.
    pub(crate) fn runnable(&self) -> bool {
        let positive = [self.in_ch, self.out_ch, self.in_h, self.in_w, self.groups]
            .into_iter()
            .chain(self.kernel)
            .chain(self.stride)
            .chain(self.dilation)
            .all(|v| v > 0);
        positive
            && self.in_ch.is_multiple_of(self.groups)
            && self.out_ch.is_multiple_of(self.groups)
    }

    /// Runs the convolution (no bias) of `x` with weights `w` laid out
    /// `[out_ch, in_ch/groups, kh, kw]`.
    ///
    /// Large convolutions (at least [`super::PARALLEL_MACS`] multiply-adds)
    /// use every core. Each output is summed in an order set by the
    /// geometry alone (taps in weight order; for products in blocks of
    /// 256 taps, the blocks' sums added in order), so the result
    /// does not depend on the machine, its cores or the split: in the ring
    /// it is the convolution's definition exactly, in `f64` that sum up to
    /// rounding (padding taps add exact zeros).
    pub fn apply<T: Scalar>(&self, w: &[T], x: &[T]) -> Vec<T> {
        assert_eq!(x.len(), self.in_len(), "input size");
        self.run(Isa::best(), w, x, 1)
    }

    /// [`Conv2dGeom::apply`] to each of the consecutive records in `xs`,
    /// outputs consecutive; one call shares the cores over all records.
    pub fn apply_batch<T: Scalar>(&self, w: &[T], xs: &[T]) -> Vec<T> {
        self.apply_batch_on(Isa::best(), w, xs)
    }

    /// [`Conv2dGeom::apply_batch`] compiled for `isa` (the baseline when
    /// this CPU lacks it); the result is the same on every one.
    pub fn apply_batch_on<T: Scalar>(&self, isa: Isa, w: &[T], xs: &[T]) -> Vec<T> {
        let in_len = self.in_len();
        assert!(xs.len().is_multiple_of(in_len), "input size");
        self.run(isa, w, xs, xs.len().checked_div(in_len).unwrap_or(0))
    }

    /// The convolution of `records` consecutive records, compiled for `isa`.
    fn run<T: Scalar>(&self, isa: Isa, w: &[T], xs: &[T], records: usize) -> Vec<T> {
        assert_eq!(w.len(), self.weight_len(), "weight size");
        let plane = self.out_h() * self.out_w();
        let mut out = vec![T::default(); records * self.out_len()];
        if !self.runnable() || plane == 0 || records == 0 {
            return out;
        }
        let macs = self
            .weight_len()
            .saturating_mul(plane)
            .saturating_mul(records);
        if self.in_ch == self.groups {
            par::run_all(isa, macs, self.stencil_tasks(w, xs, &mut out, macs));
        } else {
            par::run_all(isa, macs, self.product_tasks(w, xs, &mut out, macs));
        }
        out
    }

    /// Depthwise: tasks of whole output planes, a few channels each.
    fn stencil_tasks<'a, T: Scalar>(
        &'a self,
        w: &'a [T],
        xs: &'a [T],
        out: &'a mut [T],
        macs: usize,
    ) -> Vec<stencil::Planes<'a, T>> {
        let plane = self.out_h() * self.out_w();
        let per = self.out_ch.div_ceil(2 * par::workers(macs)).max(1);
        let mut tasks = Vec::new();
        for (rec, y) in out.chunks_mut(self.out_len()).enumerate() {
            let x = &xs[rec * self.in_len()..][..self.in_len()];
            for (k, planes) in y.chunks_mut(per * plane).enumerate() {
                let first = k * per;
                tasks.push(stencil::Planes {
                    geom: self,
                    w,
                    x,
                    first,
                    out: planes,
                });
            }
        }
        tasks
    }

    /// Blocks of the matrix product: per record and group, pixels in pieces
    /// of [`NB`]; output channels split too when that leaves fewer than two
    /// blocks per core.
    fn product_tasks<'a, T: Scalar>(
        &'a self,
        w: &'a [T],
        xs: &'a [T],
        out: &'a mut [T],
        macs: usize,
    ) -> Vec<im2col::Block<'a, T>> {
        let plane = self.out_h() * self.out_w();
        let ocg = self.out_ch / self.groups;
        let nb = NB.min(plane.next_multiple_of(MR));
        let pieces = plane.div_ceil(nb);
        let records = out.len() / self.out_len();
        let blocks = records * self.groups * pieces;
        let want = if par::workers(macs) > 1 {
            2 * par::workers(macs)
        } else {
            1
        };
        let splits = want.div_ceil(blocks).clamp(1, ocg.div_ceil(NR));
        let per = ocg.div_ceil(splits).next_multiple_of(NR).min(ocg);
        let splits = ocg.div_ceil(per);
        let mut tasks = Vec::with_capacity(blocks * splits);
        for rec in 0..records {
            let x = &xs[rec * self.in_len()..][..self.in_len()];
            for g in 0..self.groups {
                for s in 0..splits {
                    for piece in 0..pieces {
                        tasks.push(im2col::Block {
                            geom: self,
                            w,
                            x,
                            g,
                            first: g * ocg + s * per,
                            n0: piece * nb,
                            rows: Vec::with_capacity(per),
                        });
                    }
                }
            }
        }
        for (row, piece, y) in par::pieces(out, plane, nb) {
            let (rec, oc) = (row / self.out_ch, row % self.out_ch);
            let (g, s) = (oc / ocg, oc % ocg / per);
            tasks[((rec * self.groups + g) * splits + s) * pieces + piece]
                .rows
                .push(y);
        }
        tasks
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::PARALLEL_MACS;
    use crate::kernels::testing::{conv_by_definition, on_threads, small_f64, values};

    /// An ordinary convolution (stride 1, no padding, one group) to vary.
    fn plain(in_ch: usize, hw: [usize; 2], out_ch: usize, kernel: [usize; 2]) -> Conv2dGeom {
        Conv2dGeom {
            in_ch,
            in_h: hw[0],
            in_w: hw[1],
            out_ch,
            kernel,
            stride: [1, 1],
            pads: [0; 4],
            dilation: [1, 1],
            groups: 1,
        }
    }

    /// On every instruction set this CPU has, the ring convolution of
    /// `records` random full-range records equals its definition exactly.
    fn assert_ring_exact(g: &Conv2dGeom, records: usize, seed: u64) {
        let w = values(seed, g.weight_len());
        let xs = values(seed ^ 0x5555, g.in_len() * records);
        let want = conv_by_definition(g, &w, &xs);
        for isa in Isa::available() {
            assert_eq!(g.apply_batch_on(isa, &w, &xs), want, "{isa:?} {g:?}");
        }
    }

    #[test]
    fn conv_matches_hand_computation() {
        // 1 channel 3x3 input, 2x2 kernel of ones, stride 1, no pad -> 2x2 sums.
        let g = Conv2dGeom {
            in_ch: 1,
            in_h: 3,
            in_w: 3,
            out_ch: 1,
            kernel: [2, 2],
            stride: [1, 1],
            pads: [0; 4],
            dilation: [1, 1],
            groups: 1,
        };
        let x: Vec<f64> = (1..=9).map(|v| v as f64).collect();
        assert_eq!(g.apply(&[1.0; 4], &x), vec![12.0, 16.0, 24.0, 28.0]);
        // pad 1 stride 2: corners see one 2x2 block each.
        let g2 = Conv2dGeom {
            pads: [1; 4],
            stride: [2, 2],
            ..g
        };
        assert_eq!((g2.out_h(), g2.out_w()), (2, 2));
        assert_eq!(g2.apply(&[1.0; 4], &x), vec![1.0, 5.0, 11.0, 28.0]);
    }

    #[test]
    fn ring_conv_wraps_like_f64_on_small_ints() {
        let g = Conv2dGeom {
            in_ch: 2,
            in_h: 4,
            in_w: 4,
            out_ch: 3,
            kernel: [3, 3],
            stride: [1, 1],
            pads: [1; 4],
            dilation: [1, 1],
            groups: 1,
        };
        let w: Vec<i64> = (0..g.weight_len() as i64).map(|i| (i % 7) - 3).collect();
        let x: Vec<i64> = (0..g.in_len() as i64).map(|i| (i % 5) - 2).collect();
        let wf: Vec<f64> = w.iter().map(|v| *v as f64).collect();
        let xf: Vec<f64> = x.iter().map(|v| *v as f64).collect();
        let wr: Vec<u64> = w.iter().map(|v| *v as u64).collect();
        let xr: Vec<u64> = x.iter().map(|v| *v as u64).collect();
        let yf = g.apply(&wf, &xf);
        let yr = g.apply(&wr, &xr);
        for (a, b) in yf.iter().zip(&yr) {
            assert_eq!(*a as i64, *b as i64);
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(300))]
        /// Random geometries (groups, depthwise with multipliers, strides,
        /// dilations, asymmetric pads, windows larger than the input, a
        /// batch of records) on full-range ring values: exact.
        #[test]
        fn conv_equals_its_definition(
            (in_h, in_w) in (1usize..12, 1usize..12),
            (kh, kw) in (1usize..5, 1usize..5),
            (sh, sw) in (1usize..4, 1usize..4),
            pads in proptest::array::uniform4(0usize..4),
            (dh, dw) in (1usize..3, 1usize..3),
            groups in 1usize..4,
            (icg, ocg) in (1usize..4, 1usize..9),
            records in 1usize..4,
            seed in proptest::prelude::any::<u64>(),
        ) {
            let g = Conv2dGeom {
                in_ch: icg * groups,
                in_h,
                in_w,
                out_ch: ocg * groups,
                kernel: [kh, kw],
                stride: [sh, sw],
                pads,
                dilation: [dh, dw],
                groups,
            };
            assert_ring_exact(&g, records, seed);
        }

        /// The same on `f64` integers small enough that every sum is exact:
        /// the plaintext reference's path gives the definition's values.
        #[test]
        fn f64_conv_equals_its_definition_on_exact_values(
            (in_h, in_w) in (1usize..10, 1usize..10),
            (kh, kw) in (1usize..4, 1usize..4),
            (sh, sw) in (1usize..3, 1usize..3),
            pads in proptest::array::uniform4(0usize..3),
            groups in 1usize..3,
            (icg, ocg) in (1usize..4, 1usize..8),
            seed in proptest::prelude::any::<u64>(),
        ) {
            let g = Conv2dGeom {
                in_ch: icg * groups,
                in_h,
                in_w,
                out_ch: ocg * groups,
                kernel: [kh, kw],
                stride: [sh, sw],
                pads,
                dilation: [1, 1],
                groups,
            };
            let w = small_f64(seed, g.weight_len(), 20);
            let x = small_f64(seed ^ 1, g.in_len(), 20);
            let want = conv_by_definition(&g, &w, &x);
            for isa in Isa::available() {
                proptest::prop_assert_eq!(&g.apply_batch_on(isa, &w, &x), &want);
            }
        }
    }

    /// Shapes that cross every block boundary of the kernels, scaled down
    /// from the networks they come from, large enough to use every core:
    /// a 7x7/2 stem, a 3x3 with more than one block of taps (`KC`) and
    /// pixels (`NB`), 1x1 convolutions (stride 1 and 2), channel counts
    /// that are not multiples of the tile, grouped, depthwise with stride 2,
    /// a multiplier and asymmetric pads, dilation, and a batch.
    #[test]
    fn network_shapes_equal_their_definition() {
        let stem = Conv2dGeom {
            stride: [2, 2],
            pads: [3; 4],
            ..plain(3, [64, 62], 16, [7, 7])
        };
        let wide = Conv2dGeom {
            pads: [1; 4],
            ..plain(40, [24, 23], 13, [3, 3])
        };
        let pointwise = plain(96, [14, 14], 20, [1, 1]);
        let pointwise2 = Conv2dGeom {
            stride: [2, 2],
            ..plain(64, [28, 28], 32, [1, 1])
        };
        let grouped = Conv2dGeom {
            groups: 4,
            pads: [1, 0, 2, 1],
            ..plain(32, [20, 20], 24, [3, 3])
        };
        let depthwise = Conv2dGeom {
            groups: 24,
            stride: [2, 2],
            pads: [0, 0, 1, 1],
            ..plain(24, [57, 57], 48, [3, 3])
        };
        let dilated = Conv2dGeom {
            dilation: [2, 3],
            pads: [2, 3, 2, 3],
            ..plain(9, [30, 30], 7, [3, 3])
        };
        let odd = Conv2dGeom {
            stride: [1, 2],
            pads: [2, 1, 2, 0],
            ..plain(28, [20, 19], 13, [5, 5])
        };
        for (i, g) in [
            stem, wide, pointwise, pointwise2, grouped, depthwise, dilated, odd,
        ]
        .iter()
        .enumerate()
        {
            assert_ring_exact(g, 1 + i % 2, i as u64);
        }
        let macs = wide.weight_len() * wide.out_h() * wide.out_w();
        assert!(macs >= PARALLEL_MACS && wide.weight_len() / wide.out_ch > im2col::KC);
        assert!(stem.out_h() * stem.out_w() > NB);
    }

    /// Small cases that once failed (the proptest regressions of the
    /// direct kernel before this one): a padded column with stride 3 wider
    /// than the input, and right padding reaching past a full panel.
    #[test]
    fn past_failures_equal_their_definition() {
        let one = Conv2dGeom {
            stride: [1, 3],
            pads: [0, 1, 0, 0],
            ..plain(1, [2, 1], 1, [1, 1])
        };
        let right = Conv2dGeom {
            pads: [0, 2, 0, 3],
            ..plain(2, [3, 8], 1, [1, 1])
        };
        for (i, g) in [one, right].iter().enumerate() {
            assert_ring_exact(g, 1, i as u64);
        }
    }

    /// `apply` and `apply_batch` are the same kernel: a batch is its
    /// records' convolutions, concatenated.
    #[test]
    fn batch_is_its_records_in_order() {
        let g = Conv2dGeom {
            pads: [1; 4],
            ..plain(5, [9, 7], 11, [3, 3])
        };
        let w = values(1, g.weight_len());
        let xs = values(2, 3 * g.in_len());
        let each: Vec<u64> = xs
            .chunks_exact(g.in_len())
            .flat_map(|x| g.apply(&w, x))
            .collect();
        assert_eq!(g.apply_batch(&w, &xs), each);
        assert!(g.apply_batch::<u64>(&w, &[]).is_empty());
    }

    /// In `f64` (rounding on), the result is the same bits on one thread or
    /// several and on every instruction set: the order of each sum is set
    /// by the geometry alone.
    #[test]
    fn f64_result_does_not_depend_on_threads_or_instruction_set() {
        for g in [
            Conv2dGeom {
                pads: [1; 4],
                ..plain(40, [24, 23], 13, [3, 3])
            },
            Conv2dGeom {
                groups: 16,
                pads: [1; 4],
                ..plain(16, [60, 60], 16, [3, 3])
            },
        ] {
            let w: Vec<f64> = values(3, g.weight_len())
                .iter()
                .map(|v| *v as f64 / 1e19 - 0.9)
                .collect();
            let x: Vec<f64> = values(4, g.in_len())
                .iter()
                .map(|v| *v as f64 / 3e18)
                .collect();
            let one = on_threads(1, || g.apply_batch_on(Isa::Baseline, &w, &x));
            for isa in Isa::available() {
                let many = on_threads(3, || g.apply_batch_on(isa, &w, &x));
                assert!(
                    one.iter()
                        .zip(&many)
                        .all(|(a, b)| a.to_bits() == b.to_bits())
                );
            }
            // And within rounding of the definition.
            for (a, b) in one.iter().zip(conv_by_definition(&g, &w, &x)) {
                assert!((a - b).abs() <= 1e-12 * (1.0 + b.abs()), "{a} vs {b}");
            }
        }
    }
}
