//! Fitting piecewise polynomials to a function under a stated error bound.
//!
//! Greedy over a grid of representable breakpoints: each piece is extended
//! as far as its quantized fit (judged on the fixed-point twin itself, so
//! coefficient rounding and the final floor are included) stays within the
//! budget. A piece's polynomial is a least-squares fit on Chebyshev nodes in
//! the centred variable, its polynomial scale the largest that keeps the sum
//! below `2^60` (and at least the table's output scale).

use crate::piecewise::{Piece, Piecewise};

/// How a function is approximated.
pub(crate) struct Spec<'a> {
    /// The true function.
    pub f: &'a dyn Fn(f64) -> f64,
    /// Integer slope of the exact affine part of a piece centred at `x` (1 where the function tends to `x`).
    pub slope_at: &'a dyn Fn(f64) -> i64,
    /// Fitted interval `[lo, hi)`; outside it the tails apply.
    pub lo: f64,
    /// End of the fitted interval.
    pub hi: f64,
    /// Piece for `x < lo`.
    pub left: Piece,
    /// Piece for `x >= hi`.
    pub right: Piece,
    /// Breakpoints that must exist inside `(lo, hi)`.
    pub forced: Vec<f64>,
    /// Error budget per piece.
    pub budget: f64,
    /// Judge the error relative to `|f(x)|` where `|f(x)| >= rel_floor` (absolute `budget * rel_floor` below).
    pub relative: Option<f64>,
    /// Polynomial degree.
    pub degree: usize,
    /// Breakpoint granularity (a power of two).
    pub grid: f64,
    /// Fractional bits of the output (at least the input's `f`).
    pub out: u32,
    /// Largest polynomial scale (60 keeps every sum below `2^60` whatever the value;
    /// exp's tiny values need more for their relative precision).
    pub max_scale: u32,
}

/// Error of `piece` against `spec.f` on `[a, b)` (fixed-point integers), sampled densely.
fn piece_error(spec: &Spec<'_>, piece: &Piece, a: i64, b: i64, f: u32) -> f64 {
    let table = Piecewise {
        breakpoints: vec![],
        pieces: vec![piece.clone()],
        frac_bits: f,
        out_frac_bits: spec.out,
    };
    let s = (1u64 << f) as f64;
    let so = (2f64).powi(spec.out as i32);
    let n = 256i64;
    let span = (b - a).max(1);
    let mut worst = 0.0f64;
    for i in 0..=n {
        let x = (a + span * i / n).min(b - 1);
        for x in [x, (x + 1).min(b - 1)] {
            // The twin and the secure result's possible extra unit.
            let got = table.eval_fixed(x) as f64 / so;
            let want = (spec.f)(x as f64 / s);
            let e = (got - want).abs().max((got + 1.0 / so - want).abs());
            worst = worst.max(match spec.relative {
                Some(floor) if want.abs() >= floor => e / want.abs(),
                Some(floor) => e / floor,
                None => e,
            });
        }
    }
    worst
}

/// Least-squares polynomial (degree `d`) of `g` on `[a, b]` in powers of `(x - c)`.
fn lsq(g: &dyn Fn(f64) -> f64, a: f64, b: f64, c: f64, d: usize) -> Vec<f64> {
    let h = ((b - a) / 2.0).max(1e-12);
    let mid = (a + b) / 2.0;
    let nodes = 48;
    let mut ata = vec![vec![0.0; d + 1]; d + 1];
    let mut atb = vec![0.0; d + 1];
    for i in 0..nodes {
        let x = mid + h * libm::cos(std::f64::consts::PI * (i as f64 + 0.5) / nodes as f64);
        let u = (x - c) / h;
        let y = g(x);
        let pows: Vec<f64> = (0..=d)
            .scan(1.0, |p, _| {
                let v = *p;
                *p *= u;
                Some(v)
            })
            .collect();
        for r in 0..=d {
            atb[r] += pows[r] * y;
            for q in 0..=d {
                ata[r][q] += pows[r] * pows[q];
            }
        }
    }
    let sol = solve(ata, atb);
    sol.iter()
        .enumerate()
        .scan(1.0, |hk, (_, v)| {
            let r = v / *hk;
            *hk *= h;
            Some(r)
        })
        .collect()
}

/// Gaussian elimination with partial pivoting (tiny systems).
fn solve(mut a: Vec<Vec<f64>>, mut b: Vec<f64>) -> Vec<f64> {
    let n = b.len();
    for col in 0..n {
        let piv = (col..n)
            .max_by(|i, j| a[*i][col].abs().total_cmp(&a[*j][col].abs()))
            .unwrap_or(col);
        a.swap(col, piv);
        b.swap(col, piv);
        let p = a[col][col];
        if p.abs() < 1e-300 {
            continue;
        }
        let pivot_row = a[col].clone();
        for r in col + 1..n {
            let m = a[r][col] / p;
            for (dst, src) in a[r][col..].iter_mut().zip(&pivot_row[col..]) {
                *dst -= m * src;
            }
            b[r] -= m * b[col];
        }
    }
    let mut x = vec![0.0; n];
    for r in (0..n).rev() {
        let s: f64 = (r + 1..n).map(|q| a[r][q] * x[q]).sum();
        x[r] = if a[r][r].abs() < 1e-300 {
            0.0
        } else {
            (b[r] - s) / a[r][r]
        };
    }
    x
}

/// Fits one piece on `[a, b)` (fixed-point integers).
fn fit_piece(spec: &Spec<'_>, a: i64, b: i64, f: u32) -> Piece {
    let s = (1u64 << f) as f64;
    let (af, bf) = (a as f64 / s, b as f64 / s);
    let center = ((a + b) / 2) as f64 / s;
    let slope = (spec.slope_at)(center);
    let g = |x: f64| (spec.f)(x) - slope as f64 * x;
    let o = spec.out;
    // Largest output scale keeping |sum| < 2^60 on the piece; lower the degree if it must.
    let peak = (0..=64)
        .map(|i| g(af + (bf - af) * i as f64 / 64.0).abs())
        .fold(1e-9f64, f64::max)
        * 1.25;
    // Scales are rounded down to a multiple of 4 so that a table has few
    // distinct scales (one truncation each in the secure protocol).
    let cap = spec.max_scale as f64;
    let max_scale = ((60.0 - libm::log2(peak)).floor().clamp(o as f64, cap) as u32) / 4 * 4;
    let max_scale = max_scale.max(o);
    let degree = spec.degree.min((max_scale / f) as usize);
    let coeffs = lsq(&g, af, bf, center, degree);
    let scale = max_scale;
    let q = coeffs
        .iter()
        .enumerate()
        .map(|(k, c)| (c * (2f64).powi(scale as i32 - (k as u32 * f) as i32)).round() as i64)
        .collect();
    // Put the rounding offset of the floor in the constant term: floor(v + 1/2) rounds to nearest.
    let mut piece = Piece {
        slope: slope << (o - f),
        slope_frac: 0,
        offset: 0,
        center: (center * s).round() as i64,
        coeffs: q,
        scale,
    };
    if scale > o {
        piece.coeffs[0] = piece.coeffs[0].wrapping_add(1i64 << (scale - o - 1));
    }
    piece
}

/// Fits the whole table.
pub(crate) fn fit(spec: &Spec<'_>, f: u32) -> Piecewise {
    let s = (1u64 << f) as f64;
    let g = (spec.grid * s).round() as i64;
    let to_fixed = |x: f64| (x * s).round() as i64;
    let mut cuts: Vec<i64> = vec![to_fixed(spec.lo)];
    cuts.extend(spec.forced.iter().map(|x| to_fixed(*x)));
    cuts.push(to_fixed(spec.hi));
    let mut breakpoints = Vec::new();
    let mut pieces = vec![spec.left.clone()];
    for seg in cuts.windows(2) {
        let (mut start, end) = (seg[0], seg[1]);
        while start < end {
            breakpoints.push(start);
            // Largest k with start + k*g <= end whose fit meets the budget.
            let steps = ((end - start) + g - 1) / g;
            let ok = |k: i64| {
                let b = (start + k * g).min(end);
                piece_error(spec, &fit_piece(spec, start, b, f), start, b, f) <= spec.budget
            };
            let (mut lo, mut hi) = (1i64, steps);
            if ok(hi) {
                lo = hi;
            } else {
                while hi - lo > 1 {
                    let mid = (lo + hi) / 2;
                    if ok(mid) { lo = mid } else { hi = mid }
                }
            }
            let b = (start + lo * g).min(end);
            pieces.push(fit_piece(spec, start, b, f));
            start = b;
        }
    }
    breakpoints.push(to_fixed(spec.hi));
    pieces.push(spec.right.clone());
    Piecewise {
        breakpoints,
        pieces,
        frac_bits: f,
        out_frac_bits: spec.out,
    }
}

/// Smallest `x` on the grid from which `|f(x) - tail(x)| <= budget` for all larger `x`
/// (the tail error is assumed monotone beyond it), searching `[from, to]`.
pub(crate) fn right_tail(
    f: &dyn Fn(f64) -> f64,
    tail: &dyn Fn(f64) -> f64,
    budget: f64,
    from: f64,
    to: f64,
    grid: f64,
) -> f64 {
    let mut x = to;
    while x - grid >= from && (f(x - grid) - tail(x - grid)).abs() <= budget {
        x -= grid;
    }
    x
}

/// Largest `x` on the grid up to which `|f(x) - tail(x)| <= budget` for all smaller `x`.
pub(crate) fn left_tail(
    f: &dyn Fn(f64) -> f64,
    tail: &dyn Fn(f64) -> f64,
    budget: f64,
    from: f64,
    to: f64,
    grid: f64,
) -> f64 {
    let mut x = from;
    while x + grid <= to && (f(x + grid) - tail(x + grid)).abs() <= budget {
        x += grid;
    }
    x
}
