//! Test support: random values and the kernels straight from their definitions.

use super::{Conv2dGeom, Scalar};

/// A full-range generator (splitmix64), reproducible from `seed`.
pub(crate) fn values(seed: u64, n: usize) -> Vec<u64> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        })
        .collect()
}

/// Values in `-2^(bits-1)..2^(bits-1)` as `f64` (exact, as are their
/// products and sums while they stay under 2^53).
pub(crate) fn small_f64(seed: u64, n: usize, bits: u32) -> Vec<f64> {
    values(seed, n)
        .into_iter()
        .map(|v| ((v as i64) >> (64 - bits)) as f64)
        .collect()
}

/// The convolution of every record in `xs`, straight from its definition:
/// every output, every tap, in weight order.
pub(crate) fn conv_by_definition<T: Scalar>(g: &Conv2dGeom, w: &[T], xs: &[T]) -> Vec<T> {
    let (icg, ocg) = (g.in_ch / g.groups, g.out_ch / g.groups);
    let mut out = Vec::new();
    for x in xs.chunks_exact(g.in_len()) {
        for oc in 0..g.out_ch {
            for oy in 0..g.out_h() {
                for ox in 0..g.out_w() {
                    let mut acc = T::default();
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
                                acc = acc.add(wv.mul(xv));
                            }
                        }
                    }
                    out.push(acc);
                }
            }
        }
    }
    out
}

/// `W x` for every record in `xs`, straight from its definition.
pub(crate) fn dense_by_definition<T: Scalar>(w: &[T], cols: usize, xs: &[T]) -> Vec<T> {
    xs.chunks_exact(cols)
        .flat_map(|x| {
            w.chunks_exact(cols).map(move |row| {
                row.iter()
                    .zip(x)
                    .fold(T::default(), |acc, (a, b)| acc.add(a.mul(*b)))
            })
        })
        .collect()
}

/// Runs `f` on a pool of `threads` threads (the kernels' split follows it).
pub(crate) fn on_threads<R: Send>(threads: usize, f: impl FnOnce() -> R + Send) -> R {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("thread pool")
        .install(f)
}
