//! Sound bounds propagated through a plan: how large encoded values can get
//! (for the records' per-column input limits, see [`crate::limits`]) and how far the secure output can drift
//! from the fixed-point reference (the truncations' round-ups).
//!
//! Both analyses carry, per value, a bound `gain * X + offset` on the
//! magnitude of every element in encoded units (`X` the input bound, in
//! reals), and move it through each step with the step's worst-case gain:
//! a linear layer's largest row L1 norm of encoded weights (for the layers
//! that read the record, each input weighted by its column's unit), `2^-k` for a
//! truncation by `k` bits, the window size times the multiplier for a sum
//! pool, and so on. Steps whose output is not bounded by an affine function
//! of their input (products, smooth functions) end the analysis for what
//! depends on them.

use crate::plan::{LinearParams, Plan, StepKind};
use cryptmed_protocols::linear::Bilinear;

/// `|v| <= gain * X + offset` for every element of a value (encoded units).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Bound {
    pub(crate) gain: f64,
    pub(crate) offset: f64,
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
pub(crate) enum Analysis {
    Magnitude,
    Deviation,
}

/// `2^k` as a real.
pub(crate) fn pow2(k: u32) -> f64 {
    (2f64).powi(k as i32)
}

/// Upper bound on a weight's encoded magnitude: `|w| 2^s` plus the rounding.
pub(crate) fn encoded(w: f64, scale: u32) -> f64 {
    w.abs() * pow2(scale) + 0.5
}

/// Row norms of a linear layer's encoded weights: the largest row sum of
/// `|w_enc| * unit[input]` (each input weighted by its unit; all ones without
/// `units`), the largest plain row L1 norm, and the largest encoded bias.
/// For a convolution an input's unit is the largest over its channel (each
/// output reads at most one kernel's worth of inputs; padding reads zeros).
fn layer_norms(l: &LinearParams, units: Option<&[f64]>) -> Option<(f64, f64, f64)> {
    if l.weight.len() != l.op.weight_len() {
        return None; // a public network: no weights
    }
    let s = l.weight_scale;
    // Per output row: (weighted sum, plain sum).
    let rows: Vec<(f64, f64)> = match l.op {
        Bilinear::Dense { cols, .. } => l
            .weight
            .chunks_exact(cols.max(1))
            .map(|r| {
                r.iter().enumerate().fold((0.0, 0.0), |(a, b), (j, w)| {
                    let e = encoded(*w, s);
                    (a + e * units.map_or(1.0, |u| u[j]), b + e)
                })
            })
            .collect(),
        Bilinear::Conv(g) => {
            let per = (l.weight.len() / g.out_ch.max(1)).max(1);
            let groups = g.groups.max(1);
            let (cpg, opg) = (g.in_ch / groups, (g.out_ch / groups).max(1));
            let taps = (per / cpg.max(1)).max(1);
            let plane = g.in_h * g.in_w;
            let channel_unit = |c: usize| {
                units.map_or(1.0, |u| {
                    u[c * plane..((c + 1) * plane).min(u.len())]
                        .iter()
                        .fold(0.0, |m: f64, v| m.max(*v))
                })
            };
            l.weight
                .chunks_exact(per)
                .enumerate()
                .map(|(o, r)| {
                    r.chunks(taps)
                        .enumerate()
                        .fold((0.0, 0.0), |(a, b), (k, ws)| {
                            let e: f64 = ws.iter().map(|w| encoded(*w, s)).sum();
                            (a + e * channel_unit((o / opg) * cpg + k), b + e)
                        })
                })
                .collect()
        }
        Bilinear::Diagonal { .. } => l
            .weight
            .iter()
            .enumerate()
            .map(|(j, w)| {
                let e = encoded(*w, s);
                (e * units.map_or(1.0, |u| u[j]), e)
            })
            .collect(),
    };
    let (weighted, plain) = rows
        .iter()
        .fold((0.0, 0.0), |(a, b), r| (f64::max(a, r.0), f64::max(b, r.1)));
    let bias = l
        .bias
        .as_deref()
        .unwrap_or(&[])
        .iter()
        .fold(0.0, |m, b| f64::max(m, encoded(*b, l.bias_scale)));
    Some((weighted, plain, bias))
}

/// Per value: its bound (`None` where not bounded) and the number of linear
/// layers on the longest path from the record to it. With `units`, the
/// record's element `j` is bounded by `input` times `units[j]` (not a
/// uniform bound): the linear layers that read the record weight their
/// inputs by it, and the record's own bound (`out[0]`) is meaningless unless
/// every unit is 1.
pub(crate) fn propagate(
    plan: &Plan,
    input: Bound,
    analysis: Analysis,
    units: Option<&[f64]>,
) -> Vec<(Option<Bound>, u32)> {
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
                let units = units.filter(|_| s.inputs[0] == 0);
                let norms = layer_norms(&plan.linear[*layer], units);
                let b = x.zip(norms).map(|(b, (weighted, plain, bias))| {
                    let bias = if analysis == Analysis::Magnitude {
                        bias
                    } else {
                        0.0
                    };
                    Bound {
                        gain: b.gain * weighted,
                        offset: b.offset * plain + bias,
                    }
                });
                (b, depth + 1)
            }
            StepKind::Relu { shift } | StepKind::Trunc { shift } => {
                (x.map(|b| shifted(b, *shift)), depth)
            }
            StepKind::Clip { shift, min, max } => {
                // 1-Lipschitz, and no larger than its bounds: the shifted
                // input's bound, plus (for magnitudes) the larger bound.
                let most = min.unwrap_or(0.0).abs().max(max.unwrap_or(0.0).abs());
                let extra = if analysis == Analysis::Magnitude {
                    most * pow2(plan.frac_bits)
                } else {
                    0.0
                };
                let b = x.map(|b| {
                    let b = shifted(b, *shift);
                    Bound {
                        gain: b.gain,
                        offset: b.offset + extra,
                    }
                });
                (b, depth)
            }
            StepKind::MaxPool { .. } | StepKind::Alias => (x, depth),
            StepKind::SumPool { geom, multiplier } => {
                let positions = geom.out_h() * geom.out_w();
                let g = geom
                    .windows()
                    .iter()
                    .take(positions)
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
            StepKind::Concat { align } => {
                // Each element comes from one input: the largest aligned bound holds.
                let mut bound = Some(Bound {
                    gain: 0.0,
                    offset: 0.0,
                });
                let mut deepest = 0;
                for (v, a) in s.inputs.iter().zip(align) {
                    let (b, d) = out[*v];
                    deepest = deepest.max(d);
                    bound = bound.zip(b).map(|(acc, b)| {
                        let b = b.scaled(pow2(*a), 0.0);
                        Bound {
                            gain: acc.gain.max(b.gain),
                            offset: acc.offset.max(b.offset),
                        }
                    });
                }
                (bound, deepest)
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
pub(crate) const CEILING: f64 = 4_611_686_018_427_387_904.0 * (1.0 - 1e-9);

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
    let (b, _) = propagate(plan, zero, Analysis::Deviation, None)[plan.output.value];
    b.map(|b| b.offset / pow2(plan.output.scale))
}
