//! Resizing as PIL computes it (`Image.resize`), so that a record prepared
//! here equals the one a Python training pipeline prepared from the same
//! decoded pixels: `NEAREST` walks the source with accumulated steps;
//! `BILINEAR` is PIL's separable resampling with a triangle filter widened by
//! the shrink factor (antialiasing), 22-bit fixed-point coefficients and a
//! rounding to 8 bits after each pass (horizontal first).

use super::Raster;

/// Source indices of `n_out` nearest-neighbour samples over `n_in`: PIL
/// accumulates the step `n_in / n_out` from half a step (its affine
/// transform's inner loop), and truncates.
fn nearest_indices(n_in: usize, n_out: usize) -> Vec<usize> {
    let step = n_in as f64 / n_out as f64;
    let mut at = step * 0.5;
    (0..n_out)
        .map(|_| {
            let i = (at as usize).min(n_in - 1);
            at += step;
            i
        })
        .collect()
}

/// `img` resized to `width x height` by nearest neighbour.
pub(super) fn nearest(img: &Raster, width: usize, height: usize) -> Raster {
    let (xs, ys) = (
        nearest_indices(img.width, width),
        nearest_indices(img.height, height),
    );
    let c = img.channels;
    let mut data = Vec::with_capacity(width * height * c);
    for y in &ys {
        for x in &xs {
            let at = (y * img.width + x) * c;
            data.extend_from_slice(&img.data[at..at + c]);
        }
    }
    Raster {
        width,
        height,
        channels: c,
        data,
    }
}

/// Fixed-point bits of PIL's resampling coefficients (`32 - 8 - 2`).
const PRECISION_BITS: u32 = 22;

/// One output sample's source window and fixed-point weights.
struct Window {
    first: usize,
    weights: Vec<i64>,
}

/// PIL's `precompute_coeffs` for the bilinear filter, normalised to 8-bit fixed point.
fn windows(n_in: usize, n_out: usize) -> Vec<Window> {
    let scale = n_in as f64 / n_out as f64;
    let filter_scale = scale.max(1.0);
    let support = filter_scale; // the bilinear filter's support is 1
    let inverse = 1.0 / filter_scale;
    (0..n_out)
        .map(|o| {
            let center = (o as f64 + 0.5) * scale;
            let first = ((center - support + 0.5) as i64).max(0) as usize;
            let last = ((center + support + 0.5) as i64).min(n_in as i64) as usize;
            let raw: Vec<f64> = (first..last)
                .map(|i| {
                    let x = ((i as f64 - center + 0.5) * inverse).abs();
                    if x < 1.0 { 1.0 - x } else { 0.0 }
                })
                .collect();
            let total: f64 = raw.iter().sum();
            let one = (1i64 << PRECISION_BITS) as f64;
            let weights = raw
                .iter()
                .map(|w| {
                    let k = if total != 0.0 { w / total } else { *w };
                    if k < 0.0 {
                        (-0.5 + k * one) as i64
                    } else {
                        (0.5 + k * one) as i64
                    }
                })
                .collect();
            Window { first, weights }
        })
        .collect()
}

/// PIL's `clip8`: a fixed-point sum back to a byte.
fn clip8(sum: i64) -> u8 {
    (sum >> PRECISION_BITS).clamp(0, 255) as u8
}

/// One pass along rows (`horizontal`) or columns, with PIL's rounding.
fn pass(img: &Raster, n_out: usize, horizontal: bool) -> Raster {
    let c = img.channels;
    let (width, height) = if horizontal {
        (n_out, img.height)
    } else {
        (img.width, n_out)
    };
    let ws = windows(if horizontal { img.width } else { img.height }, n_out);
    let mut data = vec![0u8; width * height * c];
    for y in 0..height {
        for x in 0..width {
            let w = &ws[if horizontal { x } else { y }];
            for ch in 0..c {
                let mut sum = 1i64 << (PRECISION_BITS - 1);
                for (k, weight) in w.weights.iter().enumerate() {
                    let (sx, sy) = if horizontal {
                        (w.first + k, y)
                    } else {
                        (x, w.first + k)
                    };
                    sum += img.data[(sy * img.width + sx) * c + ch] as i64 * weight;
                }
                data[(y * width + x) * c + ch] = clip8(sum);
            }
        }
    }
    Raster {
        width,
        height,
        channels: c,
        data,
    }
}

/// `img` resized to `width x height` as PIL's `BILINEAR` does.
pub(super) fn bilinear(img: &Raster, width: usize, height: usize) -> Raster {
    let across = if width != img.width {
        pass(img, width, true)
    } else {
        img.clone()
    };
    if height != img.height {
        pass(&across, height, false)
    } else {
        across
    }
}
