//! The piecewise-polynomial form shared by the secure protocol, the
//! fixed-point twin and training.
//!
//! Breakpoints `t_1 < ... < t_m` (integers at the input scale `f`) split the
//! line into `m + 1` pieces: piece 0 for `x < t_1`, piece `j` for
//! `t_j <= x < t_{j+1}`, piece `m` for `x >= t_m`. On its piece,
//!
//! `f(x) = slope * x + offset + floor(sum_k coeffs[k] * (x - center)^k / 2^(scale - f))`
//!
//! with an integer `slope`, `offset` and `center` at scale `f`, and
//! `coeffs[k]` at scale `scale - k f`. The polynomial sum is computed in
//! wrapping 64-bit arithmetic, exact modulo 2^64; a table is valid when, on
//! every piece, the true sum stays below `2^61` in magnitude (the headroom the
//! secure truncation needs). The exact affine part lets identity tails
//! (`x` for large `x` in softplus, GELU, SiLU, ELU) cover the whole input
//! range without any truncation.

use serde::{Deserialize, Serialize};

/// One piece: an exact affine part plus a truncated polynomial part.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Piece {
    /// Integer slope of the exact affine part (0 or 1 in practice).
    pub slope: i64,
    /// Offset of the exact affine part, at scale `f`.
    pub offset: i64,
    /// Expansion point of the polynomial, at scale `f`.
    pub center: i64,
    /// Polynomial coefficients: `coeffs[k]` at scale `scale - k f` (empty: no polynomial).
    pub coeffs: Vec<i64>,
    /// Fractional bits of the polynomial sum.
    pub scale: u32,
}

impl Piece {
    /// A constant piece (`value` at scale `f`).
    pub fn constant(value: i64, f: u32) -> Self {
        Self {
            slope: 0,
            offset: value,
            center: 0,
            coeffs: vec![],
            scale: f,
        }
    }

    /// The identity piece `x`.
    pub fn identity(f: u32) -> Self {
        Self {
            slope: 1,
            offset: 0,
            center: 0,
            coeffs: vec![],
            scale: f,
        }
    }

    /// Degree of the polynomial part (0 when there is none).
    pub fn degree(&self) -> usize {
        self.coeffs.len().saturating_sub(1)
    }
}

/// A whole table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Piecewise {
    /// Ascending breakpoints at scale `f`.
    pub breakpoints: Vec<i64>,
    /// `breakpoints.len() + 1` pieces.
    pub pieces: Vec<Piece>,
    /// Fractional bits of input and output.
    pub frac_bits: u32,
}

impl Piecewise {
    /// Index of the piece `x` falls in.
    pub fn piece_of(&self, x: i64) -> usize {
        self.breakpoints.partition_point(|t| *t <= x)
    }

    /// The fixed-point twin: exactly what the secure protocol computes, except
    /// that the protocol's truncation may round up by one unit.
    pub fn eval_fixed(&self, x: i64) -> i64 {
        let p = &self.pieces[self.piece_of(x)];
        let affine = p.slope.wrapping_mul(x).wrapping_add(p.offset);
        if p.coeffs.is_empty() {
            return affine;
        }
        affine.wrapping_add(poly_sum(p, x) >> (p.scale - self.frac_bits))
    }

    /// The same function in `f64` (decoded coefficients), for training.
    pub fn eval_f64(&self, x: f64) -> f64 {
        let s = (1u64 << self.frac_bits) as f64;
        let xi = (x * s).floor() as i64;
        let p = &self.pieces[self.piece_of(xi)];
        let mut y = p.slope as f64 * x + p.offset as f64 / s;
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
