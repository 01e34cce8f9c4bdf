//! Symmetric evaluation: a table fitted on `[0, inf)` and the sign of `x`.
//!
//! Sigmoid satisfies `f(-x) = 1 - f(x)` ([`Symmetry::Complement`]), tanh and
//! erf `f(-x) = -f(x)` ([`Symmetry::Odd`]), softplus, SiLU and both GELUs
//! `f(-x) = f(x) - x` ([`Symmetry::Shift`]). So `f(x) = g(|x|)` for `x >= 0`
//! and the symmetric image of it otherwise, with `g` a table on `[0, inf)`
//! that needs about half the breakpoints of the full one (its breakpoint at
//! 0 is dropped: `|x|` is never negative). The error bound is the full
//! table's, at every `x`.
//!
//! For the odd and complement forms the secure protocol multiplies `g` by the
//! sign bit after its truncation, which needs `g` as a linear form of dealer
//! values: so every piece of such a half table is a polynomial (constant tails
//! become degree-0 polynomials at a scale the table already uses).

use serde::Serialize;

use crate::piecewise::{Piece, Piecewise};
use crate::{ApproxError, Function, Precision, fit, reference};

/// How `f(-x)` follows from `f(x)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Symmetry {
    /// `f(-x) = -f(x)` (tanh, erf).
    Odd,
    /// `f(-x) = C - f(x)` with `C` = [`Symmetric::total`] (sigmoid: 1).
    Complement,
    /// `f(-x) = f(x) - x` (softplus, SiLU, GELU).
    Shift,
}

/// A half table and the symmetry that extends it to the whole line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Symmetric {
    /// `g` on `[0, inf)` (its first piece also covers negative inputs, which never occur).
    pub half: Piecewise,
    /// How negative inputs are served.
    pub symmetry: Symmetry,
    /// `C` of [`Symmetry::Complement`] at the output scale (0 otherwise).
    pub total: i64,
}

impl Function {
    /// The symmetry of the function, if any.
    pub fn symmetry(&self) -> Option<Symmetry> {
        match self {
            Function::Sigmoid => Some(Symmetry::Complement),
            Function::Tanh | Function::Erf => Some(Symmetry::Odd),
            Function::Softplus | Function::Silu | Function::GeluErf | Function::GeluTanh => {
                Some(Symmetry::Shift)
            }
            _ => None,
        }
    }
}

impl Symmetric {
    /// The twin on an input at scale `f`: what the secure symmetric protocol
    /// computes, up to one unit either way (its truncation, seen through the sign).
    pub fn eval_fixed(&self, x: i64) -> i64 {
        self.eval_shifted(x, 0, false)
    }

    /// The twin on an input `y` at scale `f + k` whose truncation rounded up
    /// (`up`, as in [`Piecewise::eval_shifted`]).
    pub fn eval_shifted(&self, y: i64, k: u32, up: bool) -> i64 {
        let xf = y >> k;
        let neg = xf < 0;
        let x = if k > 0 && up { xf.wrapping_add(1) } else { xf };
        let a = if neg { x.wrapping_neg() } else { x };
        let g = self.half.eval_fixed(a);
        if !neg {
            return g;
        }
        match self.symmetry {
            Symmetry::Odd => g.wrapping_neg(),
            Symmetry::Complement => self.total.wrapping_sub(g),
            Symmetry::Shift => {
                g.wrapping_add(x.wrapping_shl(self.half.out_frac_bits - self.half.frac_bits))
            }
        }
    }
}

/// The half table of `func` (cached), or `None` for a function without a symmetry.
pub fn half_table(
    func: Function,
    precision: Precision,
    frac_bits: u32,
) -> Result<Option<Symmetric>, ApproxError> {
    crate::check_params(func, frac_bits)?;
    let Some(symmetry) = func.symmetry() else {
        return Ok(None);
    };
    static CACHE: std::sync::OnceLock<
        std::sync::Mutex<std::collections::HashMap<crate::Key, Symmetric>>,
    > = std::sync::OnceLock::new();
    crate::cached(&CACHE, crate::key(func, precision, frac_bits, true), || {
        build(func, symmetry, precision, frac_bits)
    })
    .map(Some)
}

fn build(func: Function, symmetry: Symmetry, precision: Precision, f: u32) -> Symmetric {
    let o = crate::out_frac_bits(func, f);
    let budget = crate::budget(func, precision);
    let r = move |x: f64| reference(func, x);
    let fx = |v: f64| (v * (2f64).powi(o as i32)).round() as i64;
    let grid = 1.0 / 64.0;
    let zero = |_: f64| 0i64;
    let one = |_: f64| 1i64;
    let (hi, right, slope): (f64, Piece, &dyn Fn(f64) -> i64) = match symmetry {
        Symmetry::Shift => (
            fit::right_tail(&r, &|x| x, budget * 0.5, 0.0, 64.0, grid),
            Piece::identity(f),
            &one,
        ),
        _ => {
            let h = reference(func, 1e3);
            (
                fit::right_tail(&r, &|_| h, budget * 0.5, 0.0, 64.0, grid),
                Piece::constant(fx(h), f),
                &zero,
            )
        }
    };
    let spec = fit::Spec {
        f: &r,
        slope_at: slope,
        lo: 0.0,
        hi,
        left: Piece::constant(0, f),
        right,
        forced: vec![],
        budget,
        relative: None,
        degree: 3,
        grid,
        out: o,
        // Values are at most 1 for the odd and complement forms: 56 bits
        // serve every piece, so the protocol has one truncation scale.
        max_scale: if symmetry == Symmetry::Shift { 60 } else { 56 },
    };
    let mut half = fit::fit(&spec, f);
    // |x| >= 0: the breakpoint at 0 and the piece below it are never used.
    half.breakpoints.remove(0);
    half.pieces.remove(0);
    if symmetry != Symmetry::Shift {
        let scale = half.scales().first().copied().unwrap_or(60);
        for p in half.pieces.iter_mut().filter(|p| p.coeffs.is_empty()) {
            *p = Piece {
                coeffs: vec![p.offset << (scale - o)],
                offset: 0,
                scale,
                ..p.clone()
            };
        }
    }
    let total = match symmetry {
        Symmetry::Complement => fx(reference(func, 1e3) + reference(func, -1e3)),
        _ => 0,
    };
    Symmetric {
        half,
        symmetry,
        total,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_tables_have_well_under_the_full_breakpoints() {
        for func in Function::ALL {
            let Some(h) = half_table(func, Precision::Accurate, 16).unwrap() else {
                assert!(func.symmetry().is_none());
                continue;
            };
            let full = crate::table(func, Precision::Accurate, 16).unwrap();
            assert!(
                // About half; at the tight bounds the half table also pays
                // for the symmetric evaluation's extra unit (at most 2/3).
                h.half.breakpoints.len() * 3 <= full.breakpoints.len() * 2 + 2,
                "{}: {} vs {}",
                func.name(),
                h.half.breakpoints.len(),
                full.breakpoints.len()
            );
            assert_eq!(h.half.validate(), Ok(()));
            if h.symmetry != Symmetry::Shift {
                assert!(
                    h.half
                        .pieces
                        .iter()
                        .all(|p| !p.coeffs.is_empty() && p.slope == 0)
                );
                assert_eq!(h.half.scales().len(), 1, "{}", func.name());
            }
        }
    }
}
