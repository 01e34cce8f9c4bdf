//! Precise approximations of smooth activations, in the exact form the
//! secure protocol evaluates ([`Piecewise`]).
//!
//! One source of truth feeds four users: secure evaluation
//! (`cryptmed-protocols::smooth`), the fixed-point twin
//! ([`Piecewise::eval_fixed`]), the accuracy tests, and training in PyTorch
//! (`cryptmed approx --export`, read by `python/cryptmed_approx.py`).
//! Tables are fitted on first use (deterministically, in about a
//! millisecond) and cached.
//!
//! Every table is right on the **whole** fixed-point input range: outside
//! its fitted interval a function continues with its exact asymptote
//! (constants, or the identity for softplus, SiLU, GELU and ELU), and the
//! stated error bounds hold for every input `|x| < 2^(62-f)`. With the
//! default 16 fractional bits (measured by `cryptmed approx --check`; the
//! secure result may add one unit, 1.5e-5):
//!
//! | function | [`Precision::Accurate`] bound | [`Precision::Fast`] bound |
//! |---|---|---|
//! | sigmoid, tanh, erf, SiLU, GELU (both forms) | 1e-4 absolute | 1e-3 absolute |
//! | softplus, ELU | 3e-4 absolute | 2e-3 absolute |
//! | exp on `[-16, 8]` | 5e-4 relative where `e^x >= 1/8`; below, 6.1e-5 absolute (4 units); 0 where `e^x` is under half a unit; clamped at `e^8` above 8 | 4e-3 relative (5e-4 absolute below 1/8) |
//! | reciprocal on `[1/4, 16]` | 1e-3 relative; clamped to `1/x` of the nearer end outside | 4e-3 relative |
//!
//! Exp's relative bound cannot hold for tiny values at 16 fractional bits:
//! one unit (1.5e-5) is already 1e-3 of `e^-4.2`, and `e^-16` is below half a
//! unit; the table is exact to 4 units there, which is what fixed point can say.
//!
//! Costs: online bytes grow with the number of breakpoints (about 11 per
//! breakpoint per element), dealer bytes with breakpoints times degree.

mod fit;
pub mod piecewise;

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use serde::{Deserialize, Serialize};

pub use piecewise::{Piece, Piecewise};

/// The functions with tables.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "snake_case")]
pub enum Function {
    /// `1 / (1 + e^-x)`.
    Sigmoid,
    /// Hyperbolic tangent.
    Tanh,
    /// `ln(1 + e^x)`.
    Softplus,
    /// `x` for `x > 0`, `alpha (e^x - 1)` otherwise.
    Elu {
        /// Scale of the negative branch.
        alpha: f64,
    },
    /// `x * sigmoid(x)`.
    Silu,
    /// `x Phi(x)` with the exact normal CDF.
    GeluErf,
    /// GELU with PyTorch's tanh approximation.
    GeluTanh,
    /// The error function.
    Erf,
    /// `e^x` on `[-16, 8]` (0 below, clamped above).
    Exp,
    /// `1 / x` on `[1/4, 16]` (clamped outside).
    Reciprocal,
}

/// Accuracy versus cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Precision {
    /// The stated tight bounds (default).
    #[default]
    Accurate,
    /// About ten times looser, with fewer breakpoints (fewer online bytes).
    Fast,
}

/// Why a table could not be built.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ApproxError {
    /// Only some precisions are supported.
    #[error("{0} fractional bits is not supported for smooth functions (use 12 to 20)")]
    FracBits(u32),
    /// A parameter is out of range.
    #[error("invalid parameter: {0}")]
    Parameter(String),
}

/// Lower end of the reciprocal's range.
pub const RECIPROCAL_LO: f64 = 0.25;
/// Upper end of the reciprocal's range.
pub const RECIPROCAL_HI: f64 = 16.0;
/// Lower end of exp's stated range.
pub const EXP_LO: f64 = -16.0;
/// Upper end of exp's range (clamped above).
pub const EXP_HI: f64 = 8.0;

impl Function {
    /// Every function, with ELU at `alpha = 1`.
    pub const ALL: [Function; 10] = [
        Function::Sigmoid,
        Function::Tanh,
        Function::Softplus,
        Function::Elu { alpha: 1.0 },
        Function::Silu,
        Function::GeluErf,
        Function::GeluTanh,
        Function::Erf,
        Function::Exp,
        Function::Reciprocal,
    ];

    /// Short name (`sigmoid`, `gelu`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            Function::Sigmoid => "sigmoid",
            Function::Tanh => "tanh",
            Function::Softplus => "softplus",
            Function::Elu { .. } => "elu",
            Function::Silu => "silu",
            Function::GeluErf => "gelu",
            Function::GeluTanh => "gelu_tanh",
            Function::Erf => "erf",
            Function::Exp => "exp",
            Function::Reciprocal => "reciprocal",
        }
    }

    /// The stated bound: absolute, or relative for exp and reciprocal.
    pub fn bound(&self, p: Precision) -> f64 {
        let tight = match self {
            Function::Softplus | Function::Elu { .. } => 3e-4,
            Function::Exp => 5e-4,
            Function::Reciprocal => 1e-3,
            _ => 1e-4,
        };
        match (p, self) {
            (Precision::Accurate, _) => tight,
            (Precision::Fast, Function::Exp | Function::Reciprocal) => 4e-3,
            (Precision::Fast, Function::Softplus | Function::Elu { .. }) => 2e-3,
            (Precision::Fast, _) => 1e-3,
        }
    }

    /// True when the bound is relative (where the value is at least [`Function::relative_floor`]).
    pub fn is_relative(&self) -> bool {
        matches!(self, Function::Exp | Function::Reciprocal)
    }

    /// Below this magnitude a relative bound is meaningless at `f` fractional
    /// bits (one unit is too large a fraction of the value): the error is then
    /// judged absolutely, as `bound * floor`. Exp: `2^(13-f)` (1/8 at 16
    /// bits); reciprocal: `2^(12-f)` (1/16, its smallest value).
    pub fn relative_floor(&self, f: u32) -> f64 {
        match self {
            Function::Reciprocal => (2f64).powi(12 - f as i32),
            _ => (2f64).powi(13 - f as i32),
        }
    }
}

/// The exact function in `f64`.
///
/// Every transcendental goes through the pure-Rust `libm`, so the fitted
/// tables are bit-identical on every machine (the dealer and the two parties
/// fit them independently; the plan digest includes them as a check).
pub fn reference(func: Function, x: f64) -> f64 {
    let sigmoid = |x: f64| 1.0 / (1.0 + libm::exp(-x));
    match func {
        Function::Sigmoid => sigmoid(x),
        Function::Tanh => libm::tanh(x),
        Function::Softplus => {
            if x > 40.0 {
                x
            } else {
                libm::log1p(libm::exp(x))
            }
        }
        Function::Elu { alpha } => {
            if x > 0.0 {
                x
            } else {
                alpha * libm::expm1(x)
            }
        }
        Function::Silu => x * sigmoid(x),
        Function::GeluErf => 0.5 * x * (1.0 + libm::erf(x / std::f64::consts::SQRT_2)),
        Function::GeluTanh => {
            let k = libm::sqrt(2.0 / std::f64::consts::PI);
            0.5 * x * (1.0 + libm::tanh(k * (x + 0.044715 * x * x * x)))
        }
        Function::Erf => libm::erf(x),
        Function::Exp => libm::exp(x.min(EXP_HI)),
        Function::Reciprocal => 1.0 / x.clamp(RECIPROCAL_LO, RECIPROCAL_HI),
    }
}

type Key = (&'static str, u64, Precision, u32);

/// The table of `func` at `frac_bits` fractional bits (fitted once, then cached).
pub fn table(
    func: Function,
    precision: Precision,
    frac_bits: u32,
) -> Result<Piecewise, ApproxError> {
    if !(12..=20).contains(&frac_bits) {
        return Err(ApproxError::FracBits(frac_bits));
    }
    let alpha = match func {
        Function::Elu { alpha } if !(alpha.is_finite() && alpha > 0.0 && alpha <= 4.0) => {
            return Err(ApproxError::Parameter(format!(
                "ELU alpha {alpha} (use 0 < alpha <= 4)"
            )));
        }
        Function::Elu { alpha } => alpha,
        _ => 1.0,
    };
    static CACHE: OnceLock<Mutex<HashMap<Key, Piecewise>>> = OnceLock::new();
    let key = (func.name(), alpha.to_bits(), precision, frac_bits);
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    if let Some(t) = cache
        .lock()
        .map_err(|_| ApproxError::Parameter("cache poisoned".into()))?
        .get(&key)
    {
        return Ok(t.clone());
    }
    let t = build(func, precision, frac_bits);
    if let Ok(mut c) = cache.lock() {
        c.insert(key, t.clone());
    }
    Ok(t)
}

fn build(func: Function, precision: Precision, f: u32) -> Piecewise {
    let bound = func.bound(precision);
    // Leave room for the secure truncation's extra unit and the twin's sampling.
    let ulp = (2f64).powi(-(f as i32));
    let budget = if func.is_relative() {
        bound * 0.8 - ulp / func.relative_floor(f)
    } else {
        bound * 0.8 - ulp
    };
    let tail_budget = budget * 0.5;
    let r = move |x: f64| reference(func, x);
    let s = (1u64 << f) as f64;
    let fx = |v: f64| (v * s).round() as i64;
    let zero = |_: f64| 0i64;
    let positive = |x: f64| i64::from(x > 0.0);
    let grid = 1.0 / 64.0;
    type Domain<'a> = (f64, f64, Piece, Piece, Vec<f64>, &'a dyn Fn(f64) -> i64);
    let (lo, hi, left, right, forced, slope): Domain<'_> = match func {
        Function::Sigmoid | Function::Tanh | Function::Erf => {
            let (l, h) = (reference(func, -1e3), reference(func, 1e3));
            let hi = fit::right_tail(&r, &|_| h, tail_budget, 0.0, 64.0, grid);
            let lo = fit::left_tail(&r, &|_| l, tail_budget, -64.0, 0.0, grid);
            (
                lo,
                hi,
                Piece::constant(fx(l), f),
                Piece::constant(fx(h), f),
                vec![0.0],
                &zero,
            )
        }
        Function::Softplus | Function::Silu | Function::GeluErf | Function::GeluTanh => {
            let hi = fit::right_tail(&r, &|x| x, tail_budget, 0.0, 64.0, grid);
            let lo = fit::left_tail(&r, &|_| 0.0, tail_budget, -64.0, 0.0, grid);
            (
                lo,
                hi,
                Piece::constant(0, f),
                Piece::identity(f),
                vec![0.0],
                &positive,
            )
        }
        Function::Elu { alpha } => {
            let lo = fit::left_tail(&r, &|_| -alpha, tail_budget, -64.0, 0.0, grid);
            (
                lo,
                0.0,
                Piece::constant(fx(-alpha), f),
                Piece::identity(f),
                vec![],
                &zero,
            )
        }
        Function::Exp => {
            let lo = fit::left_tail(&r, &|_| 0.0, (2f64).powi(-(f as i32) - 1), -64.0, 0.0, grid);
            (
                lo,
                EXP_HI,
                Piece::constant(0, f),
                Piece::constant(fx(libm::exp(EXP_HI)), f),
                vec![-4.0, 0.0, 4.0],
                &zero,
            )
        }
        Function::Reciprocal => {
            let forced = (-1..4).map(|k| (2f64).powi(k)).collect();
            (
                RECIPROCAL_LO,
                RECIPROCAL_HI,
                Piece::constant(fx(1.0 / RECIPROCAL_LO), f),
                Piece::constant(fx(1.0 / RECIPROCAL_HI), f),
                forced,
                &zero,
            )
        }
    };
    let spec = fit::Spec {
        f: &r,
        slope_at: slope,
        lo,
        hi,
        left,
        right,
        forced: forced.into_iter().filter(|x| *x > lo && *x < hi).collect(),
        budget,
        relative: func.is_relative().then(|| func.relative_floor(f)),
        degree: 3,
        grid: if matches!(func, Function::Reciprocal) {
            grid / 4.0
        } else {
            grid
        },
    };
    fit::fit(&spec, f)
}

/// One exported table.
#[derive(Debug, Serialize)]
struct Exported<'a> {
    function: &'a str,
    precision: Precision,
    bound: f64,
    relative: bool,
    table: &'a Piecewise,
    breakpoints_real: Vec<f64>,
}

/// All tables at `precision` and `frac_bits` as one JSON document, for
/// training with the exact secure functions (`python/cryptmed_approx.py`).
pub fn export_json(precision: Precision, frac_bits: u32) -> Result<String, ApproxError> {
    let s = (1u64 << frac_bits) as f64;
    let tables: Vec<(Function, Piecewise)> = Function::ALL
        .iter()
        .map(|f| table(*f, precision, frac_bits).map(|t| (*f, t)))
        .collect::<Result<_, _>>()?;
    let out: Vec<Exported<'_>> = tables
        .iter()
        .map(|(f, t)| Exported {
            function: f.name(),
            precision,
            bound: f.bound(precision),
            relative: f.is_relative(),
            table: t,
            breakpoints_real: t.breakpoints.iter().map(|b| *b as f64 / s).collect(),
        })
        .collect();
    serde_json::to_string_pretty(&serde_json::json!({ "frac_bits": frac_bits, "format": "cryptmed-approx v1", "functions": out }))
        .map_err(|e| ApproxError::Parameter(e.to_string()))
}
