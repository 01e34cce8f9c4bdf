//! Convolution as a matrix product over an implicit im2col matrix.
//!
//! For group `g`, output channel `oc` and output pixel `n`,
//! `y[oc][n] = sum over k of w[oc][k] * X[k][n]`, where row `k` of `X`
//! names one tap `(input channel, ky, kx)` (the weight layout's order) and
//! column `n` one output pixel. `X` is never built whole (for a ResNet stem
//! it would be 147 x 12544): a [`Block`] packs `KC` rows by its own pixels
//! at a time into `MR`-pixel panels and runs the micro-kernel over them
//! for every `NR` output channels, reading the weights in place.

use super::Scalar;
use super::conv::Conv2dGeom;
use super::simd::Kernel;
use super::tile::{MR, NR, tile};

/// Rows of `X` (taps) packed at once: a `KC x MR` panel (16 KiB of `u64`)
/// and `NR` weight rows of `KC` (12 KiB) stay in a 48 KiB L1 cache. (128,
/// 256 and 384, with `NB` of 128, 256 and 512, measured within noise of
/// each other on the benchmark's layers.)
pub(crate) const KC: usize = 256;

/// Output pixels of one block (a multiple of `MR`): the packed `KC x NB`
/// slice of `X` (512 KiB) stays in L2 while every channel of the block runs.
pub(crate) const NB: usize = 256;

/// One task: output channels `first..first + rows.len()` of group `g` over
/// the output pixels `n0..n0 + rows[0].len()` of one record, added into
/// `rows` (one slice per channel).
pub(crate) struct Block<'a, T> {
    /// The convolution.
    pub(crate) geom: &'a Conv2dGeom,
    /// All weights, `[out_ch, in_ch/groups, kh, kw]`.
    pub(crate) w: &'a [T],
    /// The record's input (CHW).
    pub(crate) x: &'a [T],
    /// The channel group.
    pub(crate) g: usize,
    /// First output channel (global index).
    pub(crate) first: usize,
    /// First output pixel.
    pub(crate) n0: usize,
    /// Output rows: channel `first + j` in `rows[j]`, pixels from `n0`.
    pub(crate) rows: Vec<&'a mut [T]>,
}

impl<T: Scalar> Kernel for Block<'_, T> {
    type Output = ();

    #[inline(always)]
    fn run(mut self) {
        let g = self.geom;
        let k_len = g.weight_len() / g.out_ch;
        let npix = self.rows.first().map_or(0, |r| r.len());
        let panels = npix.div_ceil(MR);
        let mut packed = vec![T::default(); KC.min(k_len) * panels * MR];
        let mut taps = Vec::with_capacity(KC.min(k_len));
        for k0 in (0..k_len).step_by(KC) {
            let kc = KC.min(k_len - k0);
            tap_table(g, self.g, k0, kc, &mut taps);
            let packed = &mut packed[..kc * panels * MR];
            pack(g, self.x, &taps, self.n0, npix, packed);
            for j0 in (0..self.rows.len()).step_by(NR) {
                let nr = NR.min(self.rows.len() - j0);
                let wrows: [&[T]; NR] = std::array::from_fn(|j| {
                    let oc = self.first + j0 + j.min(nr - 1);
                    &self.w[oc * k_len + k0..][..kc]
                });
                for (p, panel) in packed.chunks_exact(kc * MR).enumerate() {
                    let acc = tile(panel, wrows);
                    let lanes = MR.min(npix - p * MR);
                    for (row, sums) in self.rows[j0..j0 + nr].iter_mut().zip(&acc) {
                        let out = &mut row[p * MR..p * MR + lanes];
                        for (o, s) in out.iter_mut().zip(sums) {
                            *o = o.add(*s);
                        }
                    }
                }
            }
        }
    }
}

/// One row of `X`: where its input channel starts in the record, and the
/// offsets `ky*dh - pad_top`, `kx*dw - pad_left` of its tap.
#[derive(Clone, Copy)]
struct Tap {
    base: usize,
    dy: isize,
    dx: isize,
}

/// The taps of rows `k0..k0 + kc` of group `g`'s `X`.
fn tap_table(geom: &Conv2dGeom, g: usize, k0: usize, kc: usize, taps: &mut Vec<Tap>) {
    let [kh, kw] = geom.kernel;
    let icg = geom.in_ch / geom.groups;
    taps.clear();
    taps.extend((k0..k0 + kc).map(|k| {
        let (icl, ky, kx) = (k / (kh * kw), k / kw % kh, k % kw);
        Tap {
            base: (g * icg + icl) * geom.in_h * geom.in_w,
            dy: (ky * geom.dilation[0]) as isize - geom.pads[0] as isize,
            dx: (kx * geom.dilation[1]) as isize - geom.pads[1] as isize,
        }
    }));
}

/// Packs the rows `taps` of `X` over pixels `n0..n0 + npix` into `dst` as
/// panels: `dst[(p * kc + kk) * MR + lane]` is row `kk`, pixel
/// `n0 + p * MR + lane`; zero where the tap falls in the padding and for
/// lanes past the last pixel.
#[inline(always)]
fn pack<T: Scalar>(
    geom: &Conv2dGeom,
    x: &[T],
    taps: &[Tap],
    n0: usize,
    npix: usize,
    dst: &mut [T],
) {
    let kc = taps.len();
    let (ow, in_h, in_w) = (geom.out_w(), geom.in_h as isize, geom.in_w);
    let [sh, sw] = geom.stride;
    let panels: Vec<Runs> = (0..dst.len() / (kc * MR))
        .map(|p| Runs::new(n0 + p * MR, MR.min(npix - p * MR), ow))
        .collect();
    // Tap by tap, so that the input is read row after row (prefetchable),
    // not one cache line from each of `kc` rows per panel.
    for (kk, t) in taps.iter().enumerate() {
        for (p, runs) in panels.iter().enumerate() {
            let d = &mut dst[(p * kc + kk) * MR..][..MR];
            for &Run { lane, len, oy, ox } in runs.iter() {
                let d = &mut d[lane..lane + len];
                let iy = (oy * sh) as isize + t.dy;
                if iy < 0 || iy >= in_h {
                    d.fill(T::default());
                    continue;
                }
                let row = &x[t.base + iy as usize * in_w..][..in_w];
                let ix = (ox * sw) as isize + t.dx;
                let last = ix + ((d.len() - 1) * sw) as isize;
                if ix >= 0 && (last as usize) < in_w {
                    copy_strided(&row[ix as usize..=last as usize], sw, d);
                } else {
                    for (l, v) in d.iter_mut().enumerate() {
                        *v = at(row, ix + (l * sw) as isize);
                    }
                }
            }
            // Lanes past the last pixel.
            d[runs.end..].fill(T::default());
        }
    }
}

/// Lanes `lane..lane + len` of a panel: pixels `ox..ox + len` of output row `oy`.
#[derive(Clone, Copy, Default)]
struct Run {
    lane: usize,
    len: usize,
    oy: usize,
    ox: usize,
}

/// The lanes of one panel cut where output rows end.
struct Runs {
    runs: [Run; MR],
    len: usize,
    /// Lanes that hold a pixel.
    end: usize,
}

impl Runs {
    #[inline(always)]
    fn new(n: usize, lanes: usize, ow: usize) -> Runs {
        let mut runs = [Run::default(); MR];
        let (mut len, mut lane) = (0, 0);
        while lane < lanes {
            let (oy, ox) = ((n + lane) / ow, (n + lane) % ow);
            let take = (ow - ox).min(lanes - lane);
            runs[len] = Run {
                lane,
                len: take,
                oy,
                ox,
            };
            len += 1;
            lane += take;
        }
        Runs {
            runs,
            len,
            end: lanes,
        }
    }

    #[inline(always)]
    fn iter(&self) -> impl Iterator<Item = &Run> {
        self.runs[..self.len].iter()
    }
}

/// `d[l] = src[l * stride]`, with whole panels at strides 1 and 2 spelled
/// out so that they compile to one vector copy or one shuffle.
#[inline(always)]
fn copy_strided<T: Scalar>(src: &[T], stride: usize, d: &mut [T]) {
    match (stride, <&mut [T; MR]>::try_from(&mut *d)) {
        (1, Ok(d)) => d.copy_from_slice(&src[..MR]),
        (2, Ok(d)) => {
            let src = &src[..2 * MR - 1];
            for (l, v) in d.iter_mut().enumerate() {
                *v = src[2 * l];
            }
        }
        _ => {
            for (v, s) in d.iter_mut().zip(src.iter().step_by(stride)) {
                *v = *s;
            }
        }
    }
}

/// `row[ix]`, or zero (padding) when `ix` is outside the row.
#[inline(always)]
fn at<T: Scalar>(row: &[T], ix: isize) -> T {
    usize::try_from(ix)
        .ok()
        .and_then(|i| row.get(i))
        .copied()
        .unwrap_or_default()
}
