//! Sound bounds propagated through a plan: how large encoded values can get
//! (for the records' input limit) and how far the secure output can drift
//! from the fixed-point reference (the truncations' round-ups).
//!
//! Both analyses carry, per value, a bound `gain * X + offset` on the
//! magnitude of every element in encoded units (`X` the input bound, in
//! reals), and move it through each step with the step's worst-case gain:
//! a linear layer's largest row L1 norm of encoded weights, `2^-k` for a
//! truncation by `k` bits, the window size times the multiplier for a sum
//! pool, and so on. Steps whose output is not bounded by an affine function
//! of their input (products, smooth functions) end the analysis for what
//! depends on them.

use crate::plan::{LinearParams, Plan, StepKind};
use cryptmed_protocols::linear::Bilinear;
use cryptmed_ring::FixedPoint;

/// `|v| <= gain * X + offset` for every element of a value (encoded units).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Bound {
    gain: f64,
    offset: f64,
}

impl Bound {
    fn scaled(self, g: f64, extra: f64) -> Bound {
        Bound {
            gain: self.gain * g,
            offset: self.offset * g + extra,
        }
    }
}

/// Which analysis runs: magnitudes (biases count, a truncation may add one
/// unit) or deviations between two runs (biases cancel; a truncation adds
/// the ceiling of the shifted deviation plus its own round-up: at most
/// `E / 2^k + 2`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Analysis {
    Magnitude,
    Deviation,
}

/// `2^k` as a real.
fn pow2(k: u32) -> f64 {
    (2f64).powi(k as i32)
}

/// Largest row L1 norm of the encoded weights of a layer (each weight
/// rounds to at most `|w| 2^s + 1/2`), and the largest encoded bias.
fn layer_norms(l: &LinearParams) -> Option<(f64, f64)> {
    if l.weight.len() != l.op.weight_len() {
        return None; // a public network: no weights
    }
    let w = pow2(l.weight_scale);
    let enc = |v: &f64| v.abs() * w + 0.5;
    let row = match l.op {
        Bilinear::Dense { cols, .. } => l
            .weight
            .chunks_exact(cols.max(1))
            .map(|r| r.iter().map(enc).sum::<f64>())
            .fold(0.0, f64::max),
        // Each output reads at most one kernel's worth of inputs (padding reads zeros).
        Bilinear::Conv(g) => l
            .weight
            .chunks_exact((l.weight.len() / g.out_ch.max(1)).max(1))
            .map(|r| r.iter().map(enc).sum::<f64>())
            .fold(0.0, f64::max),
        Bilinear::Diagonal { .. } => l.weight.iter().map(enc).fold(0.0, f64::max),
    };
    let bias = l
        .bias
        .as_deref()
        .unwrap_or(&[])
        .iter()
        .fold(0.0, |m, b| f64::max(m, b.abs() * pow2(l.bias_scale) + 0.5));
    Some((row, bias))
}

/// Per value: its bound (`None` where not bounded) and the number of linear
/// layers on the longest path from the record to it.
fn propagate(plan: &Plan, input: Bound, analysis: Analysis) -> Vec<(Option<Bound>, u32)> {
    let mut out: Vec<(Option<Bound>, u32)> = vec![(None, 0); plan.value_len.len()];
    out[0] = (Some(input), 0);
    let round = match analysis {
        Analysis::Magnitude => 1.0,
        Analysis::Deviation => 2.0,
    };
    for s in &plan.steps {
        let (x, depth) = out[s.inputs[0]];
        let shifted = |b: Bound, k: u32| {
            if k == 0 {
                b
            } else {
                b.scaled(1.0 / pow2(k), round)
            }
        };
        let (bound, depth) = match &s.kind {
            StepKind::Linear { layer, .. } => {
                let norms = layer_norms(&plan.linear[*layer]);
                let b = x.zip(norms).map(|(b, (row, bias))| {
                    let bias = if analysis == Analysis::Magnitude {
                        bias
                    } else {
                        0.0
                    };
                    b.scaled(row, bias)
                });
                (b, depth + 1)
            }
            StepKind::Relu { shift } | StepKind::Trunc { shift } => {
                (x.map(|b| shifted(b, *shift)), depth)
            }
            StepKind::MaxPool { .. } | StepKind::Alias => (x, depth),
            StepKind::SumPool {
                windows,
                multiplier,
            } => {
                let g = windows
                    .iter()
                    .enumerate()
                    .map(|(i, w)| {
                        let m = multiplier
                            .as_ref()
                            .map_or(1.0, |m| (m[i] as i64).unsigned_abs() as f64);
                        w.len() as f64 * m
                    })
                    .fold(0.0, f64::max);
                (x.map(|b| b.scaled(g, 0.0)), depth)
            }
            StepKind::Add { align } => {
                let (y, dy) = out[s.inputs[1]];
                let b = x.zip(y).map(|(a, b)| {
                    let (a, b) = (a.scaled(pow2(align[0]), 0.0), b.scaled(pow2(align[1]), 0.0));
                    Bound {
                        gain: a.gain + b.gain,
                        offset: a.offset + b.offset,
                    }
                });
                (b, depth.max(dy))
            }
            StepKind::Smooth { .. } | StepKind::Mul => (None, depth),
        };
        out[s.output] = (bound, depth);
    }
    out
}

/// The encoded magnitude every value must stay below (the truncation and
/// comparison protocols' precondition), with a relative margin that covers
/// the rounding of the floating-point analysis.
const CEILING: f64 = 4_611_686_018_427_387_904.0 * (1.0 - 1e-9);

/// See [`Model::input_limit`](crate::Model::input_limit): the largest power
/// of two `L` such that records with `|x_j| <= L` keep every value up to the
/// first linear layers' outputs below `2^62`. `None` without weights.
pub(crate) fn input_limit(plan: &Plan) -> Option<f64> {
    if plan
        .linear
        .iter()
        .any(|l| l.weight.len() != l.op.weight_len())
    {
        return None;
    }
    // Encoding rounds: |x_enc| <= X 2^f + 1/2.
    let input = Bound {
        gain: pow2(plan.frac_bits),
        offset: 0.5,
    };
    let limit = propagate(plan, input, Analysis::Magnitude)
        .into_iter()
        .filter(|(_, depth)| *depth <= 1)
        .filter_map(|(b, _)| b)
        .filter(|b| b.gain > 0.0)
        .map(|b| (CEILING - b.offset) / b.gain)
        .fold(f64::INFINITY, f64::min);
    Some(if limit > 0.0 { pow2_floor(limit) } else { 0.0 })
}

/// The largest power of two not above `v` (`v > 0`); `v` itself when infinite.
fn pow2_floor(v: f64) -> f64 {
    if v.is_finite() {
        (2f64).powi(v.log2().floor() as i32)
    } else {
        v
    }
}

/// See [`Model::output_error_bound`](crate::Model::output_error_bound).
pub(crate) fn output_error(plan: &Plan) -> Option<f64> {
    if plan
        .linear
        .iter()
        .any(|l| l.weight.len() != l.op.weight_len())
    {
        return None;
    }
    let zero = Bound {
        gain: 0.0,
        offset: 0.0,
    };
    let (b, _) = propagate(plan, zero, Analysis::Deviation)[plan.output.value];
    b.map(|b| b.offset / pow2(plan.output.scale))
}

/// Checks a record's values against the input limit; the error names the
/// record, the feature and the allowed range.
pub(crate) fn check_record(
    fp: FixedPoint,
    limit: Option<f64>,
    r: usize,
    record: &[f64],
) -> Result<(), String> {
    let Some(limit) = limit else { return Ok(()) };
    match record.iter().position(|v| v.is_nan() || v.abs() > limit) {
        None => Ok(()),
        Some(j) => Err(format!(
            "record {r}, feature {j}: value {} is outside this model's input range \
             [-{limit}, {limit}] (with its first layer's weights, larger inputs could overflow \
             the 2^62 bound of the secure protocols at {} fractional bits)",
            record[j],
            fp.frac_bits()
        )),
    }
}
