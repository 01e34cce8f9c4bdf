//! Depthwise convolution (one input channel per output channel, as in
//! MobileNet and Xception): a per-channel stencil, no matrix product.
//!
//! With one input channel a product would have only `kh * kw` (9) rows,
//! too few to pay for packing. Instead each input plane is copied once
//! into a zero-padded buffer whose columns are split by phase (column `c`
//! of the padded plane goes to phase `c % stride`, slot `c / stride`), so
//! that for every tap the `MR` outputs `ox..ox + MR` of a row read `MR`
//! consecutive slots, at any stride. Each output vector then sums all its
//! taps in registers and is stored once.

use super::Scalar;
use super::conv::Conv2dGeom;
use super::simd::Kernel;
use super::tile::MR;

/// Output vectors summed side by side.
const WIDE: usize = 4;

/// One task: output channels `first..` of one record, whole planes.
pub(crate) struct Planes<'a, T> {
    /// The convolution (`in_ch == groups`).
    pub(crate) geom: &'a Conv2dGeom,
    /// All weights, `[out_ch, 1, kh, kw]`.
    pub(crate) w: &'a [T],
    /// The record's input (CHW).
    pub(crate) x: &'a [T],
    /// First output channel.
    pub(crate) first: usize,
    /// Output planes of channels `first..`, consecutive.
    pub(crate) out: &'a mut [T],
}

impl<T: Scalar> Kernel for Planes<'_, T> {
    type Output = ();

    #[inline(always)]
    fn run(self) {
        let g = self.geom;
        let (oh, ow) = (g.out_h(), g.out_w());
        let [kh, kw] = g.kernel;
        let ocg = g.out_ch / g.groups;
        let mut padded = Phased::new(g);
        let mut filled = None;
        for (k, plane) in self.out.chunks_exact_mut(oh * ow).enumerate() {
            let oc = self.first + k;
            if filled != Some(oc / ocg) {
                padded.fill(&self.x[(oc / ocg) * g.in_h * g.in_w..][..g.in_h * g.in_w]);
                filled = Some(oc / ocg);
            }
            let taps = &self.w[oc * kh * kw..][..kh * kw];
            for (oy, orow) in plane.chunks_exact_mut(ow).enumerate() {
                // Four vectors at a time (independent sums to overlap), then one.
                let wide = ow - ow % (WIDE * MR);
                for (v, out) in orow[..wide].chunks_exact_mut(WIDE * MR).enumerate() {
                    let sums = padded.window::<WIDE>(taps, oy, v * WIDE * MR);
                    out.copy_from_slice(sums.as_flattened());
                }
                for (v, out) in orow[wide..].chunks_mut(MR).enumerate() {
                    let [sums] = padded.window::<1>(taps, oy, wide + v * MR);
                    out.copy_from_slice(&sums[..out.len()]);
                }
            }
        }
    }
}

/// One zero-padded input plane, its columns split by phase.
struct Phased<'a, T> {
    geom: &'a Conv2dGeom,
    /// Rows of the padded plane.
    rows: usize,
    /// Slots per phase row: every slot an output vector reads, the last
    /// (partial) vector of a row included.
    slots: usize,
    /// `[phase][row][slot]`.
    buf: Vec<T>,
    /// Per tap (weight order), where it reads for output `(0, 0)`.
    offsets: Vec<usize>,
}

impl<'a, T: Scalar> Phased<'a, T> {
    #[inline(always)]
    fn new(geom: &'a Conv2dGeom) -> Self {
        let rows = geom.in_h + geom.pads[0] + geom.pads[2];
        let reach = (geom.kernel[1] - 1) * geom.dilation[1] / geom.stride[1];
        let slots = geom.out_w().next_multiple_of(MR) + reach;
        let wide = (geom.in_w + geom.pads[1]).div_ceil(geom.stride[1]);
        let slots = slots.max(wide);
        let buf = vec![T::default(); geom.stride[1] * rows * slots];
        let offsets = (0..geom.kernel[0] * geom.kernel[1])
            .map(|t| {
                let (r, c) = (
                    t / geom.kernel[1] * geom.dilation[0],
                    t % geom.kernel[1] * geom.dilation[1],
                );
                ((c % geom.stride[1]) * rows + r) * slots + c / geom.stride[1]
            })
            .collect();
        Phased {
            geom,
            rows,
            slots,
            buf,
            offsets,
        }
    }

    /// Copies input plane `x` in; the padding (never written) stays zero.
    #[inline(always)]
    fn fill(&mut self, x: &[T]) {
        let g = self.geom;
        let (s, left) = (g.stride[1], g.pads[1]);
        for (r, src) in x.chunks_exact(g.in_w).enumerate() {
            for phase in 0..s {
                // Input columns c with (c + left) % s == phase, from slot (c + left) / s.
                let c0 = (phase + s - left % s) % s;
                if c0 >= src.len() {
                    continue;
                }
                let at = (phase * self.rows + r + g.pads[0]) * self.slots + (c0 + left) / s;
                let dst = &mut self.buf[at..];
                let src = &src[c0..];
                match s {
                    1 => dst[..src.len()].copy_from_slice(src),
                    // Pairs, so the compiler deinterleaves whole vectors.
                    2 => {
                        let pairs = src.chunks_exact(2);
                        let odd = pairs.remainder().first().copied();
                        let n = pairs.len();
                        for (d, p) in dst.iter_mut().zip(pairs) {
                            *d = p[0];
                        }
                        if let Some(v) = odd {
                            dst[n] = v;
                        }
                    }
                    _ => {
                        for (d, v) in dst.iter_mut().zip(src.iter().step_by(s)) {
                            *d = *v;
                        }
                    }
                }
            }
        }
    }

    /// The `V * MR` outputs from `ox0` of output row `oy` for weights
    /// `taps` (`[kh][kw]`), each summed over its taps in weight order.
    #[inline(always)]
    fn window<const V: usize>(&self, taps: &[T], oy: usize, ox0: usize) -> [[T; MR]; V] {
        let base = oy * self.geom.stride[0] * self.slots + ox0;
        let mut acc = [[T::default(); MR]; V];
        for (wv, off) in taps.iter().zip(&self.offsets) {
            let src = &self.buf[base + off..][..V * MR];
            for (a, vs) in acc.iter_mut().zip(src.chunks_exact(MR)) {
                for (a, v) in a.iter_mut().zip(vs) {
                    *a = a.add(wv.mul(*v));
                }
            }
        }
        acc
    }
}
