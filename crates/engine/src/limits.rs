//! Per-column input limits: the range each value of a record may take so
//! that every value up to the first linear layers' outputs provably stays
//! below `2^62` once encoded (the precondition of the truncation and
//! comparison protocols), and the check of records against them.
//!
//! **The rule.** The constraint is on the first layers' outputs: for every
//! output row `i`, `sum_j |w_ij| |x_j|` (encoded) plus the bias must stay
//! below `2^62`. A single limit for all columns has to assume the largest
//! weights on every column, which is far too strict for records whose
//! columns have very different units (a folded standardisation divides each
//! column's weights by its spread: a white-cell count in thousands next to a
//! specific gravity near 1.02). Instead every column `j` gets a share of the
//! headroom in proportion to its *sensitivity* `s_j`, the largest encoded
//! weight that reads it: `L_j = lambda / s_j`, with the largest `lambda`
//! that the propagated bound allows. Each column can then move any row by at
//! most the same amount, and with folded standardisation the limits come out
//! proportional to each column's spread. Each limit is rounded down to a
//! power of two (a coarse figure is all the client learns about the
//! weights) and capped by what the fixed-point format can encode.
//!
//! When a step other than a linear layer reads the record (a pooling, an
//! addition), every column gets the same limit (the uniform bound).

use cryptmed_protocols::linear::Bilinear;
use cryptmed_ring::FixedPoint;

use crate::EngineError;
use crate::bounds::{Analysis, Bound, CEILING, encoded, pow2, propagate};
use crate::plan::{Plan, StepKind};

/// Each record column's unit `1 / s_j` (see the module documentation); all
/// ones when a step other than a linear layer reads the record.
fn units(plan: &Plan) -> Vec<f64> {
    let len = plan.value_len[0];
    let readers: Vec<&crate::plan::Step> = plan
        .steps
        .iter()
        .filter(|s| s.inputs.contains(&0))
        .collect();
    let uniform = readers
        .iter()
        .any(|s| !matches!(s.kind, StepKind::Linear { .. }) || s.inputs[0] != 0);
    if uniform {
        return vec![1.0; len];
    }
    // The smallest possible encoded weight magnitude is 0.5 (the rounding):
    // a column no weight reads keeps that, so its limit is the format's.
    let mut sens = vec![0.5f64; len];
    for s in readers {
        let StepKind::Linear { layer, .. } = s.kind else {
            continue;
        };
        let l = &plan.linear[layer];
        let ws = l.weight_scale;
        match l.op {
            Bilinear::Dense { cols, .. } => {
                for r in l.weight.chunks_exact(cols.max(1)) {
                    for (j, w) in r.iter().enumerate().take(len) {
                        sens[j] = sens[j].max(encoded(*w, ws));
                    }
                }
            }
            Bilinear::Diagonal { .. } => {
                for (j, w) in l.weight.iter().enumerate().take(len) {
                    sens[j] = sens[j].max(encoded(*w, ws));
                }
            }
            Bilinear::Conv(g) => {
                let groups = g.groups.max(1);
                let (cpg, opg) = (g.in_ch / groups, (g.out_ch / groups).max(1));
                let per = (l.weight.len() / g.out_ch.max(1)).max(1);
                let taps = (per / cpg.max(1)).max(1);
                let plane = g.in_h * g.in_w;
                for (o, r) in l.weight.chunks_exact(per).enumerate() {
                    for (k, ws_c) in r.chunks(taps).enumerate() {
                        let c = (o / opg) * cpg + k;
                        let m = ws_c.iter().fold(0.0, |m: f64, w| m.max(encoded(*w, ws)));
                        for v in sens.iter_mut().skip(c * plane).take(plane) {
                            *v = v.max(m);
                        }
                    }
                }
            }
        }
    }
    sens.iter().map(|s| 1.0 / s).collect()
}

/// See [`Model::input_limits`](crate::Model::input_limits). `None` without weights.
pub(crate) fn input_limits(plan: &Plan) -> Option<Vec<f64>> {
    if plan
        .linear
        .iter()
        .any(|l| l.weight.len() != l.op.weight_len())
    {
        return None;
    }
    let units = units(plan);
    // Encoding rounds: |x_enc| <= L 2^f + 1/2; with L_j = lambda * unit_j,
    // the layers reading the record see lambda 2^f unit_j + 1/2.
    let input = Bound {
        gain: pow2(plan.frac_bits),
        offset: 0.5,
    };
    let lambda = propagate(plan, input, Analysis::Magnitude, Some(&units))
        .into_iter()
        .enumerate()
        // The record itself is bounded per column below (its entry in the
        // propagation stands for unit 1 only).
        .filter(|(v, (_, depth))| *v != 0 && *depth <= 1)
        .filter_map(|(_, (b, _))| b)
        .filter(|b| b.gain > 0.0)
        .map(|b| (CEILING - b.offset) / b.gain)
        .fold(f64::INFINITY, f64::min);
    // The record's own encoding must stay below the ceiling too.
    let cap = (CEILING - 0.5) / pow2(plan.frac_bits);
    // Bounds so far are on the scaled columns `x_j 2^e_j`; in real units
    // each limit is `2^-e_j` times that (still a power of two).
    let exponent = |j: usize| plan.input_exponents.get(j).copied().unwrap_or(0);
    Some(
        units
            .iter()
            .enumerate()
            .map(|(j, u)| pow2_floor((lambda * u).min(cap)) * (2f64).powi(-exponent(j)))
            .collect(),
    )
}

/// The largest power of two not above `v`; 0 for `v <= 0` (or NaN).
fn pow2_floor(v: f64) -> f64 {
    if v > 0.0 && v.is_finite() {
        (2f64).powi(v.log2().floor() as i32)
    } else {
        0.0
    }
}

/// Why values beyond the limits are refused, for messages.
fn why(fp: FixedPoint) -> String {
    format!(
        "within these per-column ranges the first layer's outputs provably stay below 2^62 \
         once encoded at {} fractional bits, as the secure truncation and comparison require; \
         beyond them the result could be garbage",
        fp.frac_bits()
    )
}

/// Refuses, at compile time, limits too small for real records: below
/// `needed[j]` (the schema's plausible magnitude of the column, or 1 without
/// one). The message names every such column (1-based), its limit and need.
pub(crate) fn check_usable(
    fp: FixedPoint,
    limits: &[f64],
    needed: &[f64],
) -> Result<(), EngineError> {
    let small: Vec<String> = limits
        .iter()
        .enumerate()
        .map(|(j, l)| (j, l, needed.get(j).copied().unwrap_or(1.0)))
        .filter(|(_, l, need)| **l < *need)
        .map(|(j, l, need)| format!("column {} (+-{l}, needs +-{need})", j + 1))
        .collect();
    if small.is_empty() {
        return Ok(());
    }
    let shown = small.iter().take(8).cloned().collect::<Vec<_>>().join(", ");
    let more = if small.len() > 8 {
        format!(" and {} more", small.len() - 8)
    } else {
        String::new()
    };
    Err(EngineError::Unsupported(format!(
        "the first layers' weights leave records too small a range: {shown}{more} \
         ({}); use fewer fractional bits or rescale the first layer",
        why(fp)
    )))
}

/// Checks one record (session index `record`) against `limits`: NaN is
/// refused everywhere, and with limits every `|x_j| <= L_j`. The error names
/// the record, the column (1-based) and the column's range.
pub(crate) fn check_record(
    fp: FixedPoint,
    limits: Option<&[f64]>,
    record: usize,
    values: &[f64],
) -> Result<(), EngineError> {
    for (j, v) in values.iter().enumerate() {
        let reason = if v.is_nan() {
            "NaN is not a number".to_string()
        } else if let Some(l) = limits.and_then(|l| l.get(j)).filter(|l| v.abs() > **l) {
            format!(
                "{v} is outside this model's range for this column, [-{l}, {l}] ({})",
                why(fp)
            )
        } else {
            continue;
        };
        return Err(EngineError::Record {
            record,
            column: j + 1,
            reason,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pow2_floor_rounds_down_and_refuses_nonsense() {
        assert_eq!(pow2_floor(26495.0), 16384.0);
        assert_eq!(pow2_floor(16384.0), 16384.0);
        assert_eq!(pow2_floor(0.75), 0.5);
        assert_eq!(pow2_floor(0.0), 0.0);
        assert_eq!(pow2_floor(-3.0), 0.0);
        assert_eq!(pow2_floor(f64::NAN), 0.0);
    }

    #[test]
    fn record_errors_name_record_column_and_range() {
        let fp = FixedPoint::default();
        let limits = [4.0, 1024.0];
        assert!(check_record(fp, Some(&limits), 3, &[-4.0, 1024.0]).is_ok());
        let e = check_record(fp, Some(&limits), 3, &[1.0, -1024.5]).unwrap_err();
        let m = e.to_string();
        assert!(
            m.starts_with("record 3, column 2: -1024.5 is outside this model's range for this column, [-1024, 1024]"),
            "{m}"
        );
        assert!(
            m.contains("2^62") && m.contains("16 fractional bits"),
            "{m}"
        );
        let e = check_record(fp, None, 0, &[f64::NAN]).unwrap_err();
        assert_eq!(e.to_string(), "record 0, column 1: NaN is not a number");
        assert!(check_record(fp, Some(&limits), 0, &[f64::INFINITY, 0.0]).is_err());
    }

    #[test]
    fn unusable_limits_are_refused_by_column() {
        let fp = FixedPoint::default();
        assert!(check_usable(fp, &[1.0, 2.0], &[]).is_ok());
        let m = check_usable(fp, &[1.0, 0.5, 0.25], &[])
            .unwrap_err()
            .to_string();
        assert!(
            m.contains("column 2 (+-0.5, needs +-1), column 3 (+-0.25, needs +-1)"),
            "{m}"
        );
        // A schema's range sets the need: a small column may have a small limit.
        assert!(check_usable(fp, &[0.03125, 4096.0], &[0.02, 3000.0]).is_ok());
        let m = check_usable(fp, &[0.03125, 2048.0], &[0.02, 3000.0]).unwrap_err();
        assert!(
            m.to_string().contains("column 2 (+-2048, needs +-3000)"),
            "{m}"
        );
    }
}
