//! Depthwise convolution (one input channel per output channel, as in
//! MobileNet and Xception): a per-channel stencil, no matrix product.
//!
//! With one input channel a product would have `kh * kw` (9) rows, too
//! few to pay for packing; instead each tap adds `w * input row` to an
//! output row that stays in L1, a multiply-add over two slices that the
//! compiler vectorizes.

use super::Scalar;
use super::conv::Conv2dGeom;
use super::simd::Kernel;

/// One task: output channels `first..` of one record, whole planes.
pub(crate) struct Planes<'a, T> {
    /// The convolution (`in_ch / groups == 1`).
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

/// For one `kx`: outputs `lo..hi` of a row read the input row from `first`
/// on, `stride` apart (the others fall in the padding).
#[derive(Clone, Copy)]
struct Span {
    lo: usize,
    hi: usize,
    first: usize,
}

impl<T: Scalar> Kernel for Planes<'_, T> {
    type Output = ();

    #[inline(always)]
    fn run(self) {
        let g = self.geom;
        let (oh, ow) = (g.out_h(), g.out_w());
        let [kh, kw] = g.kernel;
        let [sh, sw] = g.stride;
        let ocg = g.out_ch / g.groups;
        let spans: Vec<Span> = (0..kw).map(|kx| span(g, kx)).collect();
        for (k, plane) in self.out.chunks_exact_mut(oh * ow).enumerate() {
            let oc = self.first + k;
            let xin = &self.x[(oc / ocg) * g.in_h * g.in_w..][..g.in_h * g.in_w];
            let taps = &self.w[oc * kh * kw..][..kh * kw];
            for (oy, orow) in plane.chunks_exact_mut(ow).enumerate() {
                for (ky, wrow) in taps.chunks_exact(kw).enumerate() {
                    let iy = (oy * sh + ky * g.dilation[0]) as isize - g.pads[0] as isize;
                    if iy < 0 || iy >= g.in_h as isize {
                        continue;
                    }
                    let xrow = &xin[iy as usize * g.in_w..][..g.in_w];
                    for (wv, s) in wrow.iter().zip(&spans) {
                        let out = &mut orow[s.lo..s.hi];
                        if sw == 1 {
                            for (o, v) in out.iter_mut().zip(&xrow[s.first..]) {
                                *o = o.add(wv.mul(*v));
                            }
                        } else {
                            for (o, v) in out.iter_mut().zip(xrow[s.first..].iter().step_by(sw)) {
                                *o = o.add(wv.mul(*v));
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The outputs of a row whose tap `kx` falls inside the input row:
/// `ox * sw + kx * dw - pad_left` in `0..in_w`.
fn span(g: &Conv2dGeom, kx: usize) -> Span {
    let s = g.stride[1] as isize;
    let dx = (kx * g.dilation[1]) as isize - g.pads[1] as isize;
    let lo = ((-dx).max(0) + s - 1) / s;
    let hi = ((g.in_w as isize - dx + s - 1) / s).clamp(0, g.out_w() as isize);
    if lo >= hi {
        return Span {
            lo: 0,
            hi: 0,
            first: 0,
        };
    }
    Span {
        lo: lo as usize,
        hi: hi as usize,
        first: (lo * s + dx) as usize,
    }
}
