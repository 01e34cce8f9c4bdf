//! Clear-text tensor kernels, generic over the ring and `f64`.
//!
//! The secure linear protocols run these on shares (the ring version wraps),
//! and the plaintext reference runs the same code on `f64`, so there is one
//! definition of what a convolution or a pooling window is. Tensors are flat
//! row-major slices in CHW order with no batch axis.

use serde::{Deserialize, Serialize};

use crate::Elem;

mod conv;
mod dense;
mod im2col;
mod par;
mod simd;
mod stencil;
#[cfg(test)]
mod testing;
mod tile;

pub use conv::Conv2dGeom;
pub use dense::{matvec, matvec_batch, matvec_batch_on};
pub use par::PARALLEL_MACS;
pub use simd::Isa;

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
