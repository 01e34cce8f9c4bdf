//! Clear-text tensor kernels, generic over the ring and `f64`.
//!
//! The secure linear protocols run these on shares (the ring version wraps),
//! and the plaintext reference runs the same code on `f64`, so there is one
//! definition of what a convolution or a pooling window is. Tensors are flat
//! row-major slices in CHW order with no batch axis.

use serde::{Deserialize, Serialize};

use crate::Elem;

/// Numbers the kernels run on: the ring (wrapping) and `f64`.
pub trait Scalar: Copy + Default + PartialEq + Send + Sync + 'static {
    /// `self + o`.
    fn add(self, o: Self) -> Self;
    /// `self - o`.
    fn sub(self, o: Self) -> Self;
    /// `self * o`.
    fn mul(self, o: Self) -> Self;
}

impl Scalar for Elem {
    #[inline]
    fn add(self, o: Self) -> Self {
        self.wrapping_add(o)
    }
    #[inline]
    fn sub(self, o: Self) -> Self {
        self.wrapping_sub(o)
    }
    #[inline]
    fn mul(self, o: Self) -> Self {
        self.wrapping_mul(o)
    }
}

impl Scalar for f64 {
    #[inline]
    fn add(self, o: Self) -> Self {
        self + o
    }
    #[inline]
    fn sub(self, o: Self) -> Self {
        self - o
    }
    #[inline]
    fn mul(self, o: Self) -> Self {
        self * o
    }
}

/// `y = W x` for `W` of shape `[rows, cols]` (row-major) and `x` of `cols`.
pub fn matvec<T: Scalar>(w: &[T], rows: usize, cols: usize, x: &[T]) -> Vec<T> {
    assert_eq!(w.len(), rows * cols, "weight size");
    assert_eq!(x.len(), cols, "input size");
    w.chunks_exact(cols)
        .map(|row| {
            row.iter()
                .zip(x)
                .fold(T::default(), |acc, (a, b)| acc.add(a.mul(*b)))
        })
        .collect()
}

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
    fn runnable(&self) -> bool {
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
    /// Large convolutions (at least [`PARALLEL_MACS`] multiply-adds) split
    /// their output channels over the machine's cores; the result does not
    /// depend on the split (each output is summed in the same order).
    pub fn apply<T: Scalar>(&self, w: &[T], x: &[T]) -> Vec<T> {
        assert_eq!(w.len(), self.weight_len(), "weight size");
        assert_eq!(x.len(), self.in_len(), "input size");
        let plane = self.out_h() * self.out_w();
        let mut out = vec![T::default(); self.out_len()];
        if !self.runnable() || plane == 0 || self.out_ch == 0 {
            return out;
        }
        let macs = self.weight_len().saturating_mul(plane);
        let threads = if macs >= PARALLEL_MACS {
            std::thread::available_parallelism()
                .map_or(1, |n| n.get())
                .min(self.out_ch)
        } else {
            1
        };
        if threads <= 1 {
            self.channels(w, x, 0, &mut out);
            return out;
        }
        let per = self.out_ch.div_ceil(threads);
        std::thread::scope(|s| {
            for (k, chunk) in out.chunks_mut(per * plane).enumerate() {
                s.spawn(move || self.channels(w, x, k * per, chunk));
            }
        });
        out
    }

    /// The output planes of channels `first..` into `out` (whole planes).
    fn channels<T: Scalar>(&self, w: &[T], x: &[T], first: usize, out: &mut [T]) {
        let (oh, ow) = (self.out_h(), self.out_w());
        let (kh, kw) = (self.kernel[0], self.kernel[1]);
        let icg = self.in_ch / self.groups;
        let ocg = self.out_ch / self.groups;
        for (k, plane) in out.chunks_exact_mut(oh * ow).enumerate() {
            let oc = first + k;
            let g = oc / ocg;
            for icl in 0..icg {
                let ic = g * icg + icl;
                let xin = &x[ic * self.in_h * self.in_w..(ic + 1) * self.in_h * self.in_w];
                for ky in 0..kh {
                    for kx in 0..kw {
                        let wv = w[((oc * icg + icl) * kh + ky) * kw + kx];
                        let dy = (ky * self.dilation[0]) as isize - self.pads[0] as isize;
                        let dx = (kx * self.dilation[1]) as isize - self.pads[1] as isize;
                        // Outputs whose input column is inside the row: ox*s + dx in [0, in_w).
                        let s = self.stride[1] as isize;
                        let lo = ((-dx).max(0) + s - 1) / s;
                        let hi = ((self.in_w as isize - dx + s - 1) / s).clamp(0, ow as isize);
                        if lo >= hi {
                            continue;
                        }
                        let (lo, hi) = (lo as usize, hi as usize);
                        let first = (lo as isize * s + dx) as usize;
                        for oy in 0..oh {
                            let iy = (oy * self.stride[0]) as isize + dy;
                            if iy < 0 || iy >= self.in_h as isize {
                                continue;
                            }
                            let row = &xin[iy as usize * self.in_w..(iy as usize + 1) * self.in_w];
                            let orow = &mut plane[oy * ow + lo..oy * ow + hi];
                            if s == 1 {
                                // Contiguous taps: a plain multiply-add over two slices.
                                for (o, xv) in orow.iter_mut().zip(&row[first..]) {
                                    *o = o.add(wv.mul(*xv));
                                }
                            } else {
                                let taps = row[first..].iter().step_by(s as usize);
                                for (o, xv) in orow.iter_mut().zip(taps) {
                                    *o = o.add(wv.mul(*xv));
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Multiply-adds from which a convolution uses every core (below it, a
/// thread's start-up costs more than it saves).
pub const PARALLEL_MACS: usize = 1 << 20;

/// Output length of a sliding window along one axis: 0 when the window
/// does not fit the padded input, and for a degenerate window (kernel,
/// stride or dilation 0), which validation refuses; never overflows.
pub fn out_len(
    input: usize,
    kernel: usize,
    stride: usize,
    pad_total: usize,
    dilation: usize,
) -> usize {
    if kernel == 0 || stride == 0 || dilation == 0 {
        return 0;
    }
    let span = dilation.saturating_mul(kernel - 1).saturating_add(1);
    let padded = input.saturating_add(pad_total);
    if padded < span {
        return 0;
    }
    (padded - span) / stride + 1
}

/// Shape and hyper-parameters of a 2-D pooling over one CHW tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Pool2dGeom {
    /// Channels.
    pub ch: usize,
    /// Input height.
    pub in_h: usize,
    /// Input width.
    pub in_w: usize,
    /// Window height and width.
    pub kernel: [usize; 2],
    /// Stride along height and width.
    pub stride: [usize; 2],
    /// Padding: top, left, bottom, right (padded cells are never in a window).
    pub pads: [usize; 4],
}

impl Pool2dGeom {
    /// Output height.
    pub fn out_h(&self) -> usize {
        out_len(
            self.in_h,
            self.kernel[0],
            self.stride[0],
            self.pads[0].saturating_add(self.pads[2]),
            1,
        )
    }

    /// Output width.
    pub fn out_w(&self) -> usize {
        out_len(
            self.in_w,
            self.kernel[1],
            self.stride[1],
            self.pads[1].saturating_add(self.pads[3]),
            1,
        )
    }

    /// Number of output elements (saturating).
    pub fn out_len(&self) -> usize {
        self.ch
            .saturating_mul(self.out_h())
            .saturating_mul(self.out_w())
    }

    /// For each output element (CHW order), the flat input indices inside its
    /// window, padding excluded, in row-major order.
    pub fn windows(&self) -> Vec<Vec<usize>> {
        let (oh, ow) = (self.out_h(), self.out_w());
        let mut all = Vec::with_capacity(self.out_len());
        for c in 0..self.ch {
            for oy in 0..oh {
                for ox in 0..ow {
                    let area = self.kernel[0].saturating_mul(self.kernel[1]);
                    let mut win = Vec::with_capacity(area.min(self.in_h.saturating_mul(self.in_w)));
                    for ky in 0..self.kernel[0] {
                        let iy = (oy * self.stride[0] + ky) as isize - self.pads[0] as isize;
                        if iy < 0 || iy >= self.in_h as isize {
                            continue;
                        }
                        for kx in 0..self.kernel[1] {
                            let ix = (ox * self.stride[1] + kx) as isize - self.pads[1] as isize;
                            if ix >= 0 && ix < self.in_w as isize {
                                win.push((c * self.in_h + iy as usize) * self.in_w + ix as usize);
                            }
                        }
                    }
                    all.push(win);
                }
            }
        }
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    /// The convolution straight from its definition: every output, every tap.
    fn conv_by_definition(g: &Conv2dGeom, w: &[u64], x: &[u64]) -> Vec<u64> {
        let (icg, ocg) = (g.in_ch / g.groups, g.out_ch / g.groups);
        let mut out = Vec::new();
        for oc in 0..g.out_ch {
            for oy in 0..g.out_h() {
                for ox in 0..g.out_w() {
                    let mut acc = 0u64;
                    for icl in 0..icg {
                        let ic = (oc / ocg) * icg + icl;
                        for ky in 0..g.kernel[0] {
                            for kx in 0..g.kernel[1] {
                                let iy = (oy * g.stride[0] + ky * g.dilation[0]) as isize
                                    - g.pads[0] as isize;
                                let ix = (ox * g.stride[1] + kx * g.dilation[1]) as isize
                                    - g.pads[1] as isize;
                                if iy < 0
                                    || ix < 0
                                    || iy >= g.in_h as isize
                                    || ix >= g.in_w as isize
                                {
                                    continue;
                                }
                                let wv =
                                    w[((oc * icg + icl) * g.kernel[0] + ky) * g.kernel[1] + kx];
                                let xv = x[(ic * g.in_h + iy as usize) * g.in_w + ix as usize];
                                acc = acc.wrapping_add(wv.wrapping_mul(xv));
                            }
                        }
                    }
                    out.push(acc);
                }
            }
        }
        out
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(200))]
        #[test]
        fn conv_equals_its_definition(
            (in_h, in_w) in (1usize..9, 1usize..9),
            (kh, kw) in (1usize..4, 1usize..4),
            (sh, sw) in (1usize..4, 1usize..4),
            pads in proptest::array::uniform4(0usize..3),
            (dh, dw) in (1usize..3, 1usize..3),
            groups in 1usize..3,
            (icg, ocg) in (1usize..3, 1usize..3),
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
            // A simple full-range generator (splitmix64).
            let mut s = seed;
            let mut next = || {
                s = s.wrapping_add(0x9e37_79b9_7f4a_7c15);
                let mut z = s;
                z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
                z ^ (z >> 31)
            };
            let w: Vec<u64> = (0..g.weight_len()).map(|_| next()).collect();
            let x: Vec<u64> = (0..g.in_len()).map(|_| next()).collect();
            proptest::prop_assert_eq!(g.apply(&w, &x), conv_by_definition(&g, &w, &x));
        }
    }

    /// A convolution big enough to split over cores (odd channel count, so
    /// the split is uneven) equals its definition.
    #[test]
    fn parallel_conv_equals_its_definition() {
        let g = Conv2dGeom {
            in_ch: 28,
            in_h: 20,
            in_w: 19,
            out_ch: 13,
            kernel: [5, 5],
            stride: [1, 2],
            pads: [2, 1, 2, 0],
            dilation: [1, 1],
            groups: 1,
        };
        assert!(g.weight_len() * g.out_h() * g.out_w() >= PARALLEL_MACS);
        let w: Vec<u64> = (0..g.weight_len() as u64)
            .map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15))
            .collect();
        let x: Vec<u64> = (0..g.in_len() as u64)
            .map(|i| (i ^ 0x5555).wrapping_mul(0xbf58_476d_1ce4_e5b9))
            .collect();
        assert_eq!(g.apply(&w, &x), conv_by_definition(&g, &w, &x));
    }

    #[test]
    fn degenerate_geometry_never_divides_by_zero_or_overflows() {
        // Stride, kernel or dilation 0: no output, no panic.
        assert_eq!(out_len(8, 3, 0, 0, 1), 0);
        assert_eq!(out_len(8, 0, 1, 0, 1), 0);
        assert_eq!(out_len(8, 3, 1, 0, 0), 0);
        // Sizes near usize::MAX saturate instead of wrapping.
        assert_eq!(out_len(usize::MAX, 2, 1, usize::MAX, usize::MAX), 1);
        assert_eq!(out_len(4, usize::MAX, 1, 0, usize::MAX), 0);
        let g = Conv2dGeom {
            in_ch: 1,
            in_h: 4,
            in_w: 4,
            out_ch: 2,
            kernel: [3, 3],
            stride: [0, 0],
            pads: [0; 4],
            dilation: [1, 1],
            groups: 1,
        };
        assert_eq!(g.out_len(), 0);
        assert!(g.apply(&[1.0; 18], &[1.0; 16]).is_empty());
        let g0 = Conv2dGeom {
            groups: 0,
            stride: [1, 1],
            ..g
        };
        assert_eq!(g0.weight_len(), 0);
        assert_eq!(g0.apply::<f64>(&[], &[1.0; 16]), vec![0.0; g0.out_len()]);
        let huge = Conv2dGeom {
            in_ch: usize::MAX,
            out_ch: usize::MAX,
            pads: [usize::MAX; 4],
            stride: [1, 1],
            ..g
        };
        assert_eq!(huge.in_len(), usize::MAX);
        assert_eq!(huge.weight_len(), usize::MAX);
        assert_eq!(huge.out_len(), usize::MAX);
        let p = Pool2dGeom {
            ch: 3,
            in_h: 4,
            in_w: 4,
            kernel: [2, 2],
            stride: [0, 0],
            pads: [0; 4],
        };
        assert_eq!(p.out_len(), 0);
        assert!(p.windows().is_empty());
        let k0 = Pool2dGeom {
            kernel: [0, 0],
            stride: [1, 1],
            ..p
        };
        assert!(k0.windows().is_empty());
    }

    #[test]
    fn pool_windows_overlap_and_skip_padding() {
        let p = Pool2dGeom {
            ch: 1,
            in_h: 3,
            in_w: 3,
            kernel: [2, 2],
            stride: [1, 1],
            pads: [0; 4],
        };
        assert_eq!(p.windows()[0], vec![0, 1, 3, 4]);
        assert_eq!(p.windows()[3], vec![4, 5, 7, 8]);
        let q = Pool2dGeom {
            pads: [1, 1, 0, 0],
            stride: [2, 2],
            ..p
        };
        assert_eq!(q.windows()[0], vec![0]);
    }
}
