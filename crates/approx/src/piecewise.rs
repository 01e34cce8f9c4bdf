//! The piecewise-polynomial form shared by the secure protocol, the
//! fixed-point twin and training.
//!
//! Breakpoints `t_1 < ... < t_m` (integers at the input scale `f`) split the
//! line into `m + 1` pieces: piece 0 for `x < t_1`, piece `j` for
//! `t_j <= x < t_{j+1}`, piece `m` for `x >= t_m`. On its piece, with the
//! output at scale `o` ([`Piecewise::out_frac_bits`], `o >= f`),
//!
//! `f(x) = affine(x) + offset + floor(sum_k coeffs[k] * (x - center)^k / 2^(scale - o))`
//!
//! where `affine(x) = slope * x` for an integer slope (`slope_frac = 0`) and
//! `floor(slope * x / 2^slope_frac)` for a fixed-point one (`slope_frac > 0`,
//! `|slope| <= 2^62`: SELU's `1.0507 x`, leaky ReLU's `alpha x`); `slope` is in
//! output units per input unit, `offset` at scale `o`, `center` at scale `f`,
//! `coeffs[k]` at scale `scale - k f`. The polynomial sum is computed in
//! wrapping 64-bit arithmetic, exact modulo 2^64; a table is valid when, on
//! every piece, the true sum stays below `2^61` in magnitude (the headroom the
//! secure truncation needs). The exact affine part lets identity tails
//! (`x` for large `x` in softplus, GELU, SiLU, ELU) cover the whole input
//! range without any truncation.
//!
//! **Shifted inputs.** Inside a network the input often arrives at a finer
//! scale `f + k` (the output of a linear layer); the secure protocol then
//! truncates it inside its own opening. [`Piecewise::eval_shifted`] is the
//! twin of that: the piece is chosen by `floor(y / 2^k)` exactly, the
//! polynomial and an integer slope see `x' = floor(y / 2^k)` or, when the
//! protocol's truncation rounds up, `x' + 1` (`up`), and a fixed-point slope
//! is applied to `y` itself ([`Piece::scaled_slope`]).

use serde::{Deserialize, Serialize};

/// Fractional bits of the fixed-point slope used by the secure protocol (and its twin).
pub const SLOPE_BITS: u32 = 62;

/// One piece: an exact affine part plus a truncated polynomial part.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Piece {
    /// Slope of the affine part, in output units per input unit, with `slope_frac` fractional bits.
    pub slope: i64,
    /// Fractional bits of `slope` (0: an integer slope, applied exactly).
    #[serde(default)]
    pub slope_frac: u32,
    /// Offset of the exact affine part, at the output scale.
    pub offset: i64,
    /// Expansion point of the polynomial, at scale `f`.
    pub center: i64,
    /// Polynomial coefficients: `coeffs[k]` at scale `scale - k f` (empty: no polynomial).
    pub coeffs: Vec<i64>,
    /// Fractional bits of the polynomial sum (at least the output scale).
    pub scale: u32,
}

impl Piece {
    /// A constant piece (`value` at the output scale).
    pub fn constant(value: i64, f: u32) -> Self {
        Self {
            slope: 0,
            slope_frac: 0,
            offset: value,
            center: 0,
            coeffs: vec![],
            scale: f,
        }
    }

    /// The identity piece `x` (output at the input's scale).
    pub fn identity(f: u32) -> Self {
        Self {
            slope: 1,
            ..Self::constant(0, f)
        }
    }

    /// The linear piece `s x` for a real slope `s` with `|s| 2^(o - f) < 2^20`
    /// (output at scale `o`, input at `f`): an integer slope when `s 2^(o-f)`
    /// is an integer, otherwise a fixed-point one with as many fractional
    /// bits as fit (62 for `|s| <= 1`).
    pub fn linear(s: f64, f: u32, o: u32) -> Self {
        let value = s * (2f64).powi(o as i32 - f as i32);
        if value.fract() == 0.0 && value.abs() < (1u64 << 52) as f64 {
            return Self {
                slope: value as i64,
                ..Self::constant(0, f)
            };
        }
        let mut e = 0u32;
        while value.abs() > (2f64).powi(e as i32) {
            e += 1;
        }
        let slope_frac = SLOPE_BITS - e.min(20);
        Self {
            slope: (value * (2f64).powi(slope_frac as i32)).round() as i64,
            slope_frac,
            ..Self::constant(0, f)
        }
    }

    /// Degree of the polynomial part (0 when there is none).
    pub fn degree(&self) -> usize {
        self.coeffs.len().saturating_sub(1)
    }

    /// True when the affine part has a fixed-point (non-integer) slope.
    pub fn fractional(&self) -> bool {
        self.slope_frac > 0
    }

    /// The fixed-point slope `(S, E)` applied to an input `y` at `k` bits
    /// above the table's input scale: the affine part is `floor(S y / 2^E)`
    /// with `E <= 62`. Exact (`S / 2^E = slope / 2^(slope_frac + k)`) when
    /// `slope_frac + k <= 62`; otherwise `S` is rounded to nearest at `E = 62`.
    pub fn scaled_slope(&self, k: u32) -> (i128, u32) {
        let e = self.slope_frac + k;
        if e <= SLOPE_BITS {
            (self.slope as i128, e)
        } else {
            let d = e - SLOPE_BITS;
            let s = self.slope as i128;
            ((s + (1i128 << (d - 1))) >> d, SLOPE_BITS)
        }
    }

    /// The affine part (slope and offset) at input `x'` (integer slope) or `y` (fixed-point slope).
    fn affine(&self, y: i64, k: u32, x: i64) -> i64 {
        let lin = if self.fractional() {
            let (s, e) = self.scaled_slope(k);
            ((s * y as i128) >> e) as i64
        } else {
            self.slope.wrapping_mul(x)
        };
        lin.wrapping_add(self.offset)
    }
}

/// A whole table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Piecewise {
    /// Ascending breakpoints at scale `f`.
    pub breakpoints: Vec<i64>,
    /// `breakpoints.len() + 1` pieces.
    pub pieces: Vec<Piece>,
    /// Fractional bits `f` of the input.
    pub frac_bits: u32,
    /// Fractional bits `o >= f` of the output (exp's is finer than its input).
    pub out_frac_bits: u32,
}

impl Piecewise {
    /// Index of the piece `x` falls in.
    pub fn piece_of(&self, x: i64) -> usize {
        self.breakpoints.partition_point(|t| *t <= x)
    }

    /// The fixed-point twin: exactly what the secure protocol computes on an
    /// input at scale `f`, except that the protocol's truncation may round up
    /// by one unit.
    pub fn eval_fixed(&self, x: i64) -> i64 {
        self.eval_shifted(x, 0, false)
    }

    /// The twin for an input `y` at scale `f + k` (see the module docs): the
    /// secure protocol returns `eval_shifted(y, k, up)` for `up` false or true
    /// (its input truncation's round-up; irrelevant when `k = 0`), plus 0 or 1.
    pub fn eval_shifted(&self, y: i64, k: u32, up: bool) -> i64 {
        let xf = y >> k;
        let p = &self.pieces[self.piece_of(xf)];
        let x = if k > 0 && up { xf.wrapping_add(1) } else { xf };
        let affine = p.affine(y, k, x);
        if p.coeffs.is_empty() {
            return affine;
        }
        affine.wrapping_add(poly_sum(p, x) >> (p.scale - self.out_frac_bits))
    }

    /// The same function in `f64` (decoded coefficients), for training.
    pub fn eval_f64(&self, x: f64) -> f64 {
        let s = (2f64).powi(self.frac_bits as i32);
        let o = (2f64).powi(self.out_frac_bits as i32);
        let xi = (x * s).floor() as i64;
        let p = &self.pieces[self.piece_of(xi)];
        let slope = p.slope as f64 / (2f64).powi(p.slope_frac as i32) * s / o;
        let mut y = slope * x + p.offset as f64 / o;
        let d = x - p.center as f64 / s;
        let mut pw = 1.0;
        for (k, c) in p.coeffs.iter().enumerate() {
            y += *c as f64 / (2f64).powi(p.scale as i32 - (k as u32 * self.frac_bits) as i32) * pw;
            pw *= d;
        }
        y
    }

    /// Largest polynomial degree.
    pub fn max_degree(&self) -> usize {
        self.pieces.iter().map(Piece::degree).max().unwrap_or(0)
    }

    /// The distinct polynomial scales, ascending (one truncation each).
    pub fn scales(&self) -> Vec<u32> {
        let mut s: Vec<u32> = self
            .pieces
            .iter()
            .filter(|p| !p.coeffs.is_empty())
            .map(|p| p.scale)
            .collect();
        s.sort_unstable();
        s.dedup();
        s
    }

    /// Checks the structure the secure protocol relies on; the error says what and where.
    pub fn validate(&self) -> Result<(), String> {
        if self.pieces.len() != self.breakpoints.len() + 1 {
            return Err(format!(
                "{} pieces for {} breakpoints (want one more piece)",
                self.pieces.len(),
                self.breakpoints.len()
            ));
        }
        if let Some(i) = self.breakpoints.windows(2).position(|w| w[0] >= w[1]) {
            return Err(format!("breakpoints {i} and {} are not ascending", i + 1));
        }
        if self.out_frac_bits < self.frac_bits || self.out_frac_bits > 60 {
            return Err(format!(
                "output scale {} outside [{}, 60]",
                self.out_frac_bits, self.frac_bits
            ));
        }
        for (j, p) in self.pieces.iter().enumerate() {
            if !p.coeffs.is_empty()
                && (p.scale < self.out_frac_bits || p.scale > self.out_frac_bits + 62)
            {
                return Err(format!(
                    "piece {j}: polynomial scale {} outside [{o}, {o} + 62] (the output scale plus a truncation)",
                    p.scale,
                    o = self.out_frac_bits
                ));
            }
            if p.slope_frac > SLOPE_BITS || (p.fractional() && p.slope.unsigned_abs() > 1 << 62) {
                return Err(format!(
                    "piece {j}: fixed-point slope {} at {} bits is out of range",
                    p.slope, p.slope_frac
                ));
            }
        }
        Ok(())
    }
}

/// The untruncated polynomial sum of piece `p` at `x`, in wrapping arithmetic.
pub fn poly_sum(p: &Piece, x: i64) -> i64 {
    let d = x.wrapping_sub(p.center);
    let (mut acc, mut pw) = (0i64, 1i64);
    for c in &p.coeffs {
        acc = acc.wrapping_add(c.wrapping_mul(pw));
        pw = pw.wrapping_mul(d);
    }
    acc
}

/// The polynomial sum of piece `p` at `x` in exact 128-bit arithmetic (to check headroom).
pub fn poly_sum_exact(p: &Piece, x: i64) -> i128 {
    let d = (x as i128) - (p.center as i128);
    let (mut acc, mut pw) = (0i128, 1i128);
    for c in &p.coeffs {
        acc += (*c as i128) * pw;
        pw = pw.saturating_mul(d);
    }
    acc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_point_slopes_are_exact_floors() {
        let p = Piece::linear(0.3, 16, 16);
        assert_eq!(p.slope_frac, 62);
        let t = Piecewise {
            breakpoints: vec![],
            pieces: vec![p.clone()],
            frac_bits: 16,
            out_frac_bits: 16,
        };
        for x in [0i64, 1, -1, 7, -7, 1 << 40, -(1 << 40), (1 << 62) - 1] {
            let want = ((x as f64) * 0.3).floor();
            let got = t.eval_fixed(x) as f64;
            assert!((got - want).abs() <= 1.0 + want.abs() * 1e-15, "{x}");
        }
        // Shifted by k: floor(0.3 y / 2^k), the slope rounded at 62 bits.
        for k in [1u32, 16, 40] {
            let (s, e) = p.scaled_slope(k);
            assert_eq!(e, 62);
            assert!(((s as f64) / (2f64).powi(62) - 0.3 / (2f64).powi(k as i32)).abs() < 1e-18);
        }
        assert_eq!(Piece::linear(1.0, 16, 36).slope, 1 << 20);
        assert_eq!(Piece::linear(1.0, 16, 36).slope_frac, 0);
    }
}
