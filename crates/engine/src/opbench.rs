//! Single-operation benchmarks (`cryptmed bench --op NAME`): one layer of
//! `n` elements run by both parties over the in-memory channel, with its
//! exact traffic, time, and error against the f64 function over a sweep of
//! the whole fixed-point input range.

use std::time::Instant;

use cryptmed_approx::{Function, Precision, reference};
use cryptmed_model::reference::{SELU_ALPHA, SELU_SCALE};
use cryptmed_protocols::testing::run_pair;
use cryptmed_protocols::{Ppa, Trace, relu, smooth};
use cryptmed_ring::{Elem, FixedPoint};
use cryptmed_share::{Prg, Seed};
use serde::Serialize;

use crate::EngineError;

/// Relative errors are measured where the true value is at least this (below it, the absolute error is the meaningful one).
pub const REL_FLOOR: f64 = 1e-2;

/// Names accepted by [`run`].
pub const OPS: [&str; 12] = [
    "relu",
    "sigmoid",
    "tanh",
    "softplus",
    "elu",
    "selu",
    "silu",
    "gelu",
    "gelu_tanh",
    "erf",
    "exp",
    "reciprocal",
];

/// What `cryptmed bench --op` reports.
#[derive(Debug, Clone, Serialize)]
pub struct OpResult {
    /// Operation name.
    pub op: String,
    /// Elements evaluated.
    pub elements: usize,
    /// Online bytes (both directions) per element.
    pub online_bytes_per_element: f64,
    /// Online rounds of the layer.
    pub online_rounds: u64,
    /// Dealer bytes per element.
    pub offline_bytes_per_element: f64,
    /// Online wall time per element (both parties in one process).
    pub seconds_per_element: f64,
    /// Largest absolute error against the f64 function over the sweep.
    pub max_abs_error: f64,
    /// Largest relative error against the f64 function over the sweep, where the true value is at least [`REL_FLOOR`].
    pub max_rel_error: f64,
}

/// Inputs covering the whole fixed-point range: a dense grid around zero,
/// powers of two and their neighbours out to the range's edge, and random values.
pub fn sweep(fp: FixedPoint, dense_radius: f64, points: usize, seed: u64) -> Vec<i64> {
    let s = fp.scale();
    let lim = (fp.limit() * s) as i64 - 1;
    let r = (dense_radius * s) as i64;
    let step = ((2 * r) / points.max(1) as i64).max(1);
    let mut xs: Vec<i64> = (-r..=r).step_by(step as usize).collect();
    for k in 0..62 {
        let p = 1i64 << k;
        if p < lim {
            xs.extend([p - 1, p, p + 1, -p - 1, -p, -p + 1]);
        }
    }
    xs.extend([lim, -lim, 0]);
    let mut prg = Prg::new(&Seed::from_u64(seed), 5);
    xs.extend(
        prg.elems(points / 8)
            .iter()
            .map(|v| ((*v as i64) >> 2).clamp(-lim, lim)),
    );
    xs
}

/// Runs operation `op` on a sweep with about `elements` points.
pub fn run(op: &str, precision: Precision, elements: usize) -> Result<OpResult, EngineError> {
    let fp = FixedPoint::default();
    match op {
        "relu" => {
            // Inputs as they arrive after a linear layer: scale 2f, truncated inside the ReLU.
            let f = fp.frac_bits();
            let xs: Vec<i64> = sweep(fp, 64.0, elements, 1)
                .into_iter()
                .map(|x| {
                    (x.clamp(-(1 << 45), 1 << 45) << f)
                        + (x.wrapping_mul(0x9E37_79B9) & ((1 << f) - 1))
                })
                .collect();
            let cmp = Ppa::default();
            let n = xs.len();
            let x: Vec<Elem> = xs.iter().map(|v| *v as Elem).collect();
            let t = Instant::now();
            let run = run_pair(
                7,
                |d| relu::deal(&cmp, d, n, f),
                |ctx, p| {
                    let m = relu::take(&cmp, p, n, f);
                    relu::eval(&cmp, ctx, &x, f, &m)
                },
                |ctx, p| {
                    let m = relu::take(&cmp, p, n, f);
                    relu::eval(&cmp, ctx, &vec![0; n], f, &m)
                },
            );
            let seconds = t.elapsed().as_secs_f64();
            let (a, b) = (run.provider.map_err(proto)?, run.client.map_err(proto)?);
            let got: Vec<f64> = cryptmed_ring::add(&a, &b)
                .iter()
                .map(|v| fp.decode(*v))
                .collect();
            let want: Vec<f64> = xs
                .iter()
                .map(|v| (*v as f64 / (fp.scale() * fp.scale())).max(0.0))
                .collect();
            let (abs, rel) = errors(&got, &want, REL_FLOOR);
            let trace: Trace = relu::trace(&cmp, n);
            Ok(OpResult {
                op: op.into(),
                elements: n,
                online_bytes_per_element: trace.bytes() as f64 / n as f64,
                online_rounds: trace.rounds(),
                offline_bytes_per_element: run.offline_bytes as f64 / n as f64,
                seconds_per_element: seconds / n as f64,
                max_abs_error: abs,
                max_rel_error: rel,
            })
        }
        name => {
            let func = if name == "selu" {
                Function::Elu { alpha: SELU_ALPHA }
            } else {
                Function::ALL
                    .into_iter()
                    .find(|f| f.name() == name)
                    .ok_or_else(|| {
                        EngineError::Unsupported(format!(
                            "unknown operation `{name}`; choose one of {}",
                            OPS.join(", ")
                        ))
                    })?
            };
            smooth_op(name, func, precision, elements)
        }
    }
}

/// One smooth function over a sweep of the whole input range (SELU: ELU then the public scale).
fn smooth_op(
    name: &str,
    func: Function,
    precision: Precision,
    elements: usize,
) -> Result<OpResult, EngineError> {
    let fp = FixedPoint::default();
    let table = cryptmed_approx::table(func, precision, fp.frac_bits())
        .map_err(|e| EngineError::Unsupported(e.to_string()))?;
    let mut xs = sweep(fp, 20.0, elements, 2);
    for t in &table.breakpoints {
        xs.extend([*t - 1, *t, *t + 1]);
    }
    let n = xs.len();
    let cmp = Ppa::default();
    let x: Vec<Elem> = xs.iter().map(|v| *v as Elem).collect();
    let t = Instant::now();
    let run = run_pair(
        11,
        |d| smooth::deal(&cmp, d, n, &table),
        |ctx, p| {
            let m = smooth::take(&cmp, p, n, &table);
            smooth::eval(&cmp, ctx, &x, &table, &m)
        },
        |ctx, p| {
            let m = smooth::take(&cmp, p, n, &table);
            smooth::eval(&cmp, ctx, &vec![0; n], &table, &m)
        },
    );
    let seconds = t.elapsed().as_secs_f64();
    let (a, b) = (run.provider.map_err(proto)?, run.client.map_err(proto)?);
    let scale = if name == "selu" { SELU_SCALE } else { 1.0 };
    let got: Vec<f64> = cryptmed_ring::add(&a, &b)
        .iter()
        .map(|v| fp.decode(*v) * scale)
        .collect();
    let want: Vec<f64> = xs
        .iter()
        .map(|v| scale * reference(func, fp.decode(*v as Elem)))
        .collect();
    let floor = if func.is_relative() {
        func.relative_floor(fp.frac_bits())
    } else {
        REL_FLOOR
    };
    let (abs, rel) = errors(&got, &want, floor);
    let trace = smooth::trace(&cmp, n, &table);
    Ok(OpResult {
        op: name.into(),
        elements: n,
        online_bytes_per_element: trace.bytes() as f64 / n as f64,
        online_rounds: trace.rounds(),
        offline_bytes_per_element: run.offline_bytes as f64 / n as f64,
        seconds_per_element: seconds / n as f64,
        max_abs_error: abs,
        max_rel_error: rel,
    })
}

fn proto(e: cryptmed_protocols::ProtocolError) -> EngineError {
    EngineError::PlanMismatch(e.to_string())
}

/// Largest absolute error, and largest relative error where the true value is at least `floor`.
fn errors(got: &[f64], want: &[f64], floor: f64) -> (f64, f64) {
    got.iter()
        .zip(want)
        .fold((0.0f64, 0.0f64), |(a, r), (g, w)| {
            let e = (g - w).abs();
            (
                a.max(e),
                if w.abs() >= floor {
                    r.max(e / w.abs())
                } else {
                    r
                },
            )
        })
}
