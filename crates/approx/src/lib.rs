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
//! (constants, or the identity for softplus, SiLU, GELU and ELU, `scale * x`
//! for SELU), and the stated error bounds hold for every input
//! `|x| < 2^(62-f)`. With the default 16 fractional bits (measured by
//! `cryptmed approx --check`, which includes the secure result's possible
//! extra unit):
//!
//! | function | [`Precision::Accurate`] bound | [`Precision::Fast`] bound |
//! |---|---|---|
//! | sigmoid, tanh, erf, SiLU, GELU (both forms) | 4e-5 absolute | 1e-3 absolute |
//! | softplus, ELU (any alpha in (0, 4]), SELU | 6e-5 absolute | 2e-3 absolute |
//! | exp | 1e-4 relative on `[-14.5, 8]`, below it `1e-4 e^-14.5` (5e-11) absolute, 4.5e-4 relative at -16; 0 below -16 (absolute error under `e^-16` = 1.1e-7); clamped at `e^8` above 8 | 4e-3 relative on `[-14.5, 8]`, the same saturation |
//! | reciprocal on `[1/4, 16]` | 1e-3 relative; clamped to `1/x` of the nearer end outside | 4e-3 relative |
//! | leaky ReLU (any alpha, `|alpha| <= 2^20`) | 2 units of `2^-f` (3.1e-5) | the same |
//!
//! The accurate bounds are what a clinician-facing logit needs: the error a
//! hidden layer's activations make is summed by the next layers, and at
//! these bounds every committed medical model's secure logits stay within
//! 1e-3 of the exact network's (models/README.md); the earlier 1e-4 / 3e-4
//! bounds left up to 4e-3. Each halving of a bound costs about a fifth more
//! breakpoints (cubic pieces: error ~ width^4), about 11 online bytes per
//! breakpoint and element.
//!
//! **Exp's output is finer than its input**: it has [`EXP_OUT_FRAC_BITS`]
//! fractional bits whatever `f`, so that one unit (1.5e-11) is 1.3e-4 of
//! `e^-16` and the relative bound holds on all of `[-16, 8]`; headroom:
//! `e^8 2^36 < 2^48`. The engine gives the value that scale and truncates it
//! where a linear layer needs (the softmax sums at it, see
//! `cryptmed-protocols::softmax`).
//!
//! **SELU and leaky ReLU** carry their constant slopes (`1.0507 x`,
//! `alpha x`) as fixed-point slopes with 62 fractional bits, applied exactly
//! (to one unit) on the whole range: no public scale step after the table.
//!
//! **Symmetric evaluation** ([`half_table`], [`Symmetric`]): sigmoid, tanh,
//! erf, softplus, SiLU and both GELUs have a symmetry (`f(-x) = C - f(x)`,
//! `-f(x)` or `f(x) - x`), so a table fitted on `[0, inf)` with about half the
//! breakpoints and the sign of `x` evaluate them; the secure protocol pays a
//! second opening for it (fewer online bytes, more rounds; see
//! `cryptmed-protocols::symmetric`).
//!
//! Costs: online bytes grow with the number of breakpoints (about 11 per
//! breakpoint per element), dealer bytes with breakpoints times degree; the
//! exact per-function figures are in `cryptmed-protocols::smooth`.

mod fit;
pub mod piecewise;
mod symmetric;

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use serde::{Deserialize, Serialize};

pub use piecewise::{Piece, Piecewise};
pub use symmetric::{Symmetric, Symmetry, half_table};

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
    /// `SELU_SCALE * ELU(x)` with `alpha = SELU_ALPHA` (Klambauer et al.).
    Selu,
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
    /// `x` for `x >= 0`, `alpha x` otherwise (two exact linear pieces).
    LeakyRelu {
        /// Slope of the negative branch.
        alpha: f64,
    },
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
/// Lower end of exp's stated range (0 below).
pub const EXP_LO: f64 = -16.0;
/// Upper end of exp's range (clamped above).
pub const EXP_HI: f64 = 8.0;
/// Where exp's relative bound ends: below `e^EXP_RELATIVE_LO` (5.0e-7) its
/// error is judged against that value, an absolute `bound * 5.0e-7`, which
/// is still 4.5e-4 relative at `e^-16`. One unit of exp's 36-bit output is
/// 1.3e-4 of `e^-16`, so no relative bound near 1e-4 could hold down there,
/// and a softmax probability that small moves by less than 1e-10.
pub const EXP_RELATIVE_LO: f64 = -14.5;
/// Fractional bits of exp's output, whatever the input's.
pub const EXP_OUT_FRAC_BITS: u32 = 36;
/// SELU's alpha.
pub const SELU_ALPHA: f64 = 1.673_263_242_354_377_3;
/// SELU's scale.
pub const SELU_SCALE: f64 = 1.050_700_987_355_480_5;

impl Function {
    /// Every table function, with ELU at `alpha = 1` (leaky ReLU, being
    /// piecewise linear and parametric, is not listed).
    pub const ALL: [Function; 11] = [
        Function::Sigmoid,
        Function::Tanh,
        Function::Softplus,
        Function::Elu { alpha: 1.0 },
        Function::Selu,
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
            Function::Selu => "selu",
            Function::Silu => "silu",
            Function::GeluErf => "gelu",
            Function::GeluTanh => "gelu_tanh",
            Function::Erf => "erf",
            Function::Exp => "exp",
            Function::Reciprocal => "reciprocal",
            Function::LeakyRelu { .. } => "leaky_relu",
        }
    }

    /// The parameter of a parametric function (ELU's and leaky ReLU's alpha).
    pub fn alpha(&self) -> Option<f64> {
        match self {
            Function::Elu { alpha } | Function::LeakyRelu { alpha } => Some(*alpha),
            _ => None,
        }
    }

    /// The stated bound at 16 fractional bits: absolute, or relative for exp
    /// (on `[EXP_LO, inf)`) and the reciprocal (see [`Function::error`]).
    pub fn bound(&self, p: Precision) -> f64 {
        let tight = match self {
            Function::Softplus | Function::Elu { .. } | Function::Selu => 6e-5,
            Function::Exp => 1e-4,
            Function::Reciprocal => 1e-3,
            Function::LeakyRelu { .. } => return 3.1e-5,
            _ => 4e-5,
        };
        match (p, self) {
            (Precision::Accurate, _) => tight,
            (Precision::Fast, Function::Exp | Function::Reciprocal) => 4e-3,
            (Precision::Fast, Function::Softplus | Function::Elu { .. } | Function::Selu) => 2e-3,
            (Precision::Fast, _) => 1e-3,
        }
    }

    /// True when the bound is relative (exp, reciprocal).
    pub fn is_relative(&self) -> bool {
        matches!(self, Function::Exp | Function::Reciprocal)
    }

    /// The denominator floor of the relative error: the error at a true
    /// value `v` is `|err| / max(|v|, floor)`. Exp: `e^EXP_RELATIVE_LO` whatever `f`
    /// (its output has [`EXP_OUT_FRAC_BITS`] bits); reciprocal: `2^(12-f)`
    /// (1/16, its smallest value, at 16 bits; coarser inputs are judged
    /// against a larger floor because one unit is then a larger fraction).
    pub fn relative_floor(&self, f: u32) -> f64 {
        match self {
            Function::Reciprocal => (2f64).powi(12 - f as i32),
            _ => libm::exp(EXP_RELATIVE_LO),
        }
    }

    /// The error of `got` at input `x` (inputs at `f` fractional bits), in
    /// the unit of [`Function::bound`]: absolute, or relative for the
    /// relative functions. Below [`EXP_LO`] exp saturates to 0 and its error
    /// is the absolute one (at most `e^EXP_LO`, see [`Function::meets`]).
    ///
    /// `f64` itself cannot resolve the difference of two values beyond a
    /// unit in its last place of each: that much (`EPSILON * (|got| + |want|)`,
    /// below 1e-9 for values under 10^6) is not counted, so that inputs near
    /// the edge of the fixed-point range (where an output at 16 fractional
    /// bits has more digits than an `f64`) are judged on the approximation,
    /// not on `f64` rounding.
    pub fn error(&self, x: f64, got: f64, f: u32) -> f64 {
        let want = reference(*self, x);
        let e = ((got - want).abs() - f64::EPSILON * (got.abs() + want.abs())).max(0.0);
        match self {
            Function::Exp if x < EXP_LO => e,
            _ if self.is_relative() => e / want.abs().max(self.relative_floor(f)),
            _ => e,
        }
    }

    /// True when `got` at `x` meets the stated bound at precision `p`.
    pub fn meets(&self, x: f64, got: f64, p: Precision, f: u32) -> bool {
        let e = self.error(x, got, f);
        match self {
            Function::Exp if x < EXP_LO => e <= libm::exp(EXP_LO),
            _ => e <= self.bound(p),
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
    let elu = |alpha: f64, x: f64| {
        if x > 0.0 { x } else { alpha * libm::expm1(x) }
    };
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
        Function::Elu { alpha } => elu(alpha, x),
        Function::Selu => SELU_SCALE * elu(SELU_ALPHA, x),
        Function::Silu => x * sigmoid(x),
        Function::GeluErf => 0.5 * x * (1.0 + libm::erf(x / std::f64::consts::SQRT_2)),
        Function::GeluTanh => {
            let k = libm::sqrt(2.0 / std::f64::consts::PI);
            0.5 * x * (1.0 + libm::tanh(k * (x + 0.044715 * x * x * x)))
        }
        Function::Erf => libm::erf(x),
        Function::Exp => libm::exp(x.min(EXP_HI)),
        Function::Reciprocal => 1.0 / x.clamp(RECIPROCAL_LO, RECIPROCAL_HI),
        Function::LeakyRelu { alpha } => {
            if x >= 0.0 {
                x
            } else {
                alpha * x
            }
        }
    }
}

/// Cache key: name, parameter bits, precision, fractional bits, half table or not.
type Key = (&'static str, u64, Precision, u32, bool);

/// Checks `frac_bits` and the function's parameter.
fn check_params(func: Function, frac_bits: u32) -> Result<(), ApproxError> {
    if !(12..=20).contains(&frac_bits) {
        return Err(ApproxError::FracBits(frac_bits));
    }
    match func {
        Function::Elu { alpha } if !(alpha.is_finite() && alpha > 0.0 && alpha <= 4.0) => Err(
            ApproxError::Parameter(format!("ELU alpha {alpha} (use 0 < alpha <= 4)")),
        ),
        Function::LeakyRelu { alpha }
            if !(alpha.is_finite() && alpha.abs() <= (1 << 20) as f64) =>
        {
            Err(ApproxError::Parameter(format!(
                "leaky ReLU alpha {alpha} (use a finite alpha with |alpha| <= 2^20)"
            )))
        }
        _ => Ok(()),
    }
}

/// Looks `key` up in the cache, building (and caching) it on a miss.
fn cached<T: Clone + Send + 'static>(
    cache: &'static OnceLock<Mutex<HashMap<Key, T>>>,
    key: Key,
    build: impl FnOnce() -> T,
) -> Result<T, ApproxError> {
    let cache = cache.get_or_init(|| Mutex::new(HashMap::new()));
    if let Some(t) = cache
        .lock()
        .map_err(|_| ApproxError::Parameter("table cache poisoned".into()))?
        .get(&key)
    {
        return Ok(t.clone());
    }
    let t = build();
    if let Ok(mut c) = cache.lock() {
        c.insert(key, t.clone());
    }
    Ok(t)
}

fn key(func: Function, precision: Precision, frac_bits: u32, half: bool) -> Key {
    let alpha = func.alpha().unwrap_or(1.0);
    (func.name(), alpha.to_bits(), precision, frac_bits, half)
}

/// The table of `func` at `frac_bits` fractional bits (fitted once, then cached).
pub fn table(
    func: Function,
    precision: Precision,
    frac_bits: u32,
) -> Result<Piecewise, ApproxError> {
    check_params(func, frac_bits)?;
    static CACHE: OnceLock<Mutex<HashMap<Key, Piecewise>>> = OnceLock::new();
    cached(&CACHE, key(func, precision, frac_bits, false), || {
        build(func, precision, frac_bits)
    })
}

/// The output scale of `func`'s table at input scale `f`.
pub fn out_frac_bits(func: Function, f: u32) -> u32 {
    match func {
        Function::Exp => EXP_OUT_FRAC_BITS.max(f),
        _ => f,
    }
}

/// The error budget of a fit (which judges the twin and the secure
/// result's extra unit): the bound with a margin for the sampled fit.
fn budget(func: Function, precision: Precision) -> f64 {
    func.bound(precision) * 0.8
}

fn build(func: Function, precision: Precision, f: u32) -> Piecewise {
    let o = out_frac_bits(func, f);
    let budget = budget(func, precision);
    let tail_budget = budget * 0.5;
    let r = move |x: f64| reference(func, x);
    let fx = |v: f64| (v * (2f64).powi(o as i32)).round() as i64;
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
        Function::Elu { .. } | Function::Selu => {
            let (scale, alpha) = match func {
                Function::Elu { alpha } => (1.0, alpha),
                _ => (SELU_SCALE, SELU_ALPHA),
            };
            let asymptote = -scale * alpha;
            let lo = fit::left_tail(&r, &|_| asymptote, tail_budget, -64.0, 0.0, grid);
            (
                lo,
                0.0,
                Piece::constant(fx(asymptote), f),
                Piece::linear(scale, f, o),
                vec![],
                &zero,
            )
        }
        Function::Exp => (
            EXP_LO,
            EXP_HI,
            Piece::constant(0, f),
            Piece::constant(fx(libm::exp(EXP_HI)), f),
            vec![],
            &zero,
        ),
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
        Function::LeakyRelu { alpha } => {
            return Piecewise {
                breakpoints: vec![0],
                pieces: vec![Piece::linear(alpha, f, o), Piece::identity(f)],
                frac_bits: f,
                out_frac_bits: o,
            };
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
        out: o,
        max_scale: if matches!(func, Function::Exp) {
            o + 56
        } else {
            60
        },
    };
    fit::fit(&spec, f)
}

/// One exported table.
#[derive(Debug, Serialize)]
struct Exported<'a> {
    function: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    alpha: Option<f64>,
    precision: Precision,
    bound: f64,
    relative: bool,
    table: &'a Piecewise,
    breakpoints_real: Vec<f64>,
}

/// All tables at `precision` and `frac_bits` as one JSON document, for
/// training with the exact secure functions (`python/cryptmed_approx.py`):
/// every function of [`Function::ALL`] (ELU at alpha 1, SELU) plus ELU at
/// each of `elu_alphas`.
pub fn export_json(
    precision: Precision,
    frac_bits: u32,
    elu_alphas: &[f64],
) -> Result<String, ApproxError> {
    let s = (1u64 << frac_bits) as f64;
    let funcs: Vec<Function> = Function::ALL
        .into_iter()
        .chain(
            elu_alphas
                .iter()
                .filter(|a| **a != 1.0)
                .map(|alpha| Function::Elu { alpha: *alpha }),
        )
        .collect();
    let tables: Vec<(Function, Piecewise)> = funcs
        .iter()
        .map(|f| table(*f, precision, frac_bits).map(|t| (*f, t)))
        .collect::<Result<_, _>>()?;
    let out: Vec<Exported<'_>> = tables
        .iter()
        .map(|(f, t)| Exported {
            function: f.name(),
            alpha: f.alpha(),
            precision,
            bound: f.bound(precision),
            relative: f.is_relative(),
            table: t,
            breakpoints_real: t.breakpoints.iter().map(|b| *b as f64 / s).collect(),
        })
        .collect();
    serde_json::to_string_pretty(&serde_json::json!({ "frac_bits": frac_bits, "format": "cryptmed-approx v2", "functions": out }))
        .map_err(|e| ApproxError::Parameter(format!("serialising the tables: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_checked() {
        assert!(matches!(
            table(Function::Sigmoid, Precision::Accurate, 24),
            Err(ApproxError::FracBits(24))
        ));
        for alpha in [0.0, -1.0, f64::NAN, 5.0] {
            let e = table(Function::Elu { alpha }, Precision::Accurate, 16).unwrap_err();
            assert!(e.to_string().contains("ELU alpha"), "{e}");
        }
        let e = table(Function::LeakyRelu { alpha: 1e7 }, Precision::Accurate, 16).unwrap_err();
        assert!(e.to_string().contains("leaky ReLU alpha"), "{e}");
    }

    #[test]
    fn every_table_is_structurally_valid() {
        for p in [Precision::Accurate, Precision::Fast] {
            for func in Function::ALL
                .into_iter()
                .chain([Function::LeakyRelu { alpha: -0.3 }])
            {
                let t = table(func, p, 16).unwrap();
                assert_eq!(t.validate(), Ok(()), "{}", func.name());
                assert_eq!(t.out_frac_bits, out_frac_bits(func, 16));
            }
        }
    }

    #[test]
    fn export_holds_selu_and_extra_elu_alphas() {
        let doc: serde_json::Value =
            serde_json::from_str(&export_json(Precision::Accurate, 16, &[0.5, 1.0]).unwrap())
                .unwrap();
        let fs = doc["functions"].as_array().unwrap();
        assert_eq!(fs.len(), Function::ALL.len() + 1);
        assert!(fs.iter().any(|f| f["function"] == "selu"));
        assert!(
            fs.iter()
                .any(|f| f["function"] == "elu" && f["alpha"].as_f64() == Some(0.5))
        );
        let exp = fs.iter().find(|f| f["function"] == "exp").unwrap();
        assert_eq!(exp["table"]["out_frac_bits"], EXP_OUT_FRAC_BITS);
    }
}
