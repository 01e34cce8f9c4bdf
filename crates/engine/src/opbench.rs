//! Single-operation benchmarks (`cryptmed bench --op NAME`): one layer run
//! by both parties over the in-memory channel, on inputs split into random
//! shares, with its exact traffic (online and dealer), online time, and
//! error against the f64 function over a sweep of the whole input range.
//!
//! **What is swept.** A smooth function (and leaky ReLU): every `stride`-th
//! unit (default: every unit) of its fitted interval `[t_1 - 2, t_m + 2]`,
//! every breakpoint and both neighbours, 0 and +-1 unit, powers of two and
//! their neighbours out to the largest magnitude `2^(62-f)`, and random values
//! over the whole range. Inputs arrive as the engine gets them from a linear
//! layer, at scale `2f` with random low bits, and the step truncates them in
//! its own opening: so the layer is exactly what the engine runs. The error
//! is measured against the f64 function at the input the table evaluated
//! (the truncated input, or the fine one for SELU's and leaky ReLU's
//! fixed-point slopes). ReLU: every unit of `[-2, 2]` and the same
//! whole-range points. Softmax: rows of 10 logits at scale `2f` of every
//! spread from `2^-16` to `2^28` (random, ties, all equal, one huge against
//! the rest), error against the f64 softmax.

use std::time::Instant;

use cryptmed_approx::{Function, Piecewise, Precision, Symmetric, reference};
use cryptmed_prep::PrepSource;
use cryptmed_protocols::testing::{PairRun, run_pair};
use cryptmed_protocols::{Ctx, Ppa, ProtocolError, Trace, relu, smooth, softmax, symmetric};
use cryptmed_ring::{Elem, FixedPoint};
use cryptmed_share::{Prg, Seed};
use serde::Serialize;

use crate::SmoothMethod;

/// Relative errors of the absolute-bound functions are measured where the
/// true value is at least this (below it the absolute error is the meaningful one).
pub const REL_FLOOR: f64 = 1e-2;

/// Relative errors of softmax probabilities are measured where the true probability is at least this.
pub const SOFTMAX_REL_FLOOR: f64 = 1e-4;

/// Slope of the negative branch `bench --op leaky_relu` uses (PyTorch's default).
pub const LEAKY_ALPHA: f64 = 0.01;

/// Names accepted by [`run`].
pub const OPS: [&str; 14] = [
    "relu",
    "leaky_relu",
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
    "softmax",
];

/// Why an operation benchmark could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpError {
    /// The name is not one of [`OPS`].
    #[error("unknown operation `{0}` for `bench --op`; choose one of {ops}", ops = OPS.join(", "))]
    Unknown(String),
    /// The table could not be built.
    #[error("operation `{op}`: {source}")]
    Table {
        /// The operation.
        op: String,
        /// Why.
        #[source]
        source: cryptmed_approx::ApproxError,
    },
    /// A party's protocol failed.
    #[error("operation `{op}`: {source}")]
    Protocol {
        /// The operation.
        op: String,
        /// Why.
        #[source]
        source: cryptmed_protocols::ProtocolError,
    },
}

/// How to run [`run`].
#[derive(Debug, Clone, Copy)]
pub struct OpConfig {
    /// Table precision.
    pub precision: Precision,
    /// Direct or symmetric evaluation (functions without a symmetry run directly).
    pub method: SmoothMethod,
    /// Elements per protocol run (the sweep runs in batches of this size, rounded to a multiple of 8).
    pub batch: usize,
    /// Sweep every `stride`-th unit of the fitted interval (1: every unit).
    pub stride: u64,
}

impl Default for OpConfig {
    fn default() -> Self {
        Self {
            precision: Precision::Accurate,
            method: SmoothMethod::Direct,
            batch: 1 << 16,
            stride: 1,
        }
    }
}

/// What `cryptmed bench --op` reports.
#[derive(Debug, Clone, Serialize)]
pub struct OpResult {
    /// Operation name.
    pub op: String,
    /// Table precision (`accurate` or `fast`).
    pub precision: Precision,
    /// `direct` or `symmetric`.
    pub method: &'static str,
    /// Elements evaluated.
    pub elements: usize,
    /// Online bytes (both directions) per element, measured.
    pub online_bytes_per_element: f64,
    /// Online rounds of one layer, measured.
    pub online_rounds: u64,
    /// Dealer bytes per element, measured.
    pub offline_bytes_per_element: f64,
    /// Online wall time per element (the slower party; both in one process).
    pub seconds_per_element: f64,
    /// Largest absolute error against the f64 function over the sweep.
    pub max_abs_error: f64,
    /// Largest relative error against the f64 function over the sweep, where
    /// the true value is at least [`REL_FLOOR`] (exp: on `[-16, 8]`;
    /// reciprocal: everywhere; softmax: probabilities of at least [`SOFTMAX_REL_FLOOR`]).
    pub max_rel_error: f64,
    /// The stated bound (absolute, or relative for exp and the reciprocal).
    pub bound: f64,
    /// Largest error in the unit of `bound` (exp below -16: its saturation, judged apart).
    pub max_error_vs_bound: f64,
    /// True when every swept input met the stated bound.
    pub within_bound: bool,
    /// What was swept.
    pub sweep: String,
}

/// Totals over the batches of a sweep.
#[derive(Default)]
struct Totals {
    elements: usize,
    online_bytes: u64,
    rounds: u64,
    offline_bytes: u64,
    seconds: f64,
    abs: f64,
    rel: f64,
    vs_bound: f64,
    within: bool,
}

impl Totals {
    fn new() -> Self {
        Self {
            within: true,
            ..Self::default()
        }
    }

    fn add_run(&mut self, run: &Ran, n: usize, trace: &Trace) {
        let p = run.provider;
        debug_assert_eq!(p, trace.provider_stats());
        debug_assert_eq!(run.client, trace.client_stats());
        self.elements += n;
        self.online_bytes += p.bytes_sent + p.bytes_recv;
        self.rounds = self.rounds.max(p.rounds.max(run.client.rounds));
        self.offline_bytes += run.offline_bytes;
        self.seconds += run.seconds;
    }

    fn result(
        self,
        op: &str,
        cfg: &OpConfig,
        method: SmoothMethod,
        bound: f64,
        sweep: String,
    ) -> OpResult {
        let n = self.elements.max(1) as f64;
        OpResult {
            op: op.into(),
            precision: cfg.precision,
            method: method.name(),
            elements: self.elements,
            online_bytes_per_element: self.online_bytes as f64 / n,
            online_rounds: self.rounds,
            offline_bytes_per_element: self.offline_bytes as f64 / n,
            seconds_per_element: self.seconds / n,
            max_abs_error: self.abs,
            max_rel_error: self.rel,
            bound,
            max_error_vs_bound: self.vs_bound,
            within_bound: self.within,
            sweep,
        }
    }
}

/// Splits `x` into two random additive shares.
fn split(x: &[Elem], seed: u64) -> (Vec<Elem>, Vec<Elem>) {
    let mut prg = Prg::new(&Seed::from_u64(seed), 99);
    let s0 = prg.elems(x.len());
    let s1 = cryptmed_ring::sub(x, &s0);
    (s0, s1)
}

/// The table function of an operation name.
fn function_of(op: &str) -> Option<Function> {
    match op {
        "leaky_relu" => Some(Function::LeakyRelu { alpha: LEAKY_ALPHA }),
        _ => Function::ALL.into_iter().find(|f| f.name() == op),
    }
}

/// Runs operation `op` over its sweep (module docs).
pub fn run(op: &str, cfg: &OpConfig) -> Result<OpResult, OpError> {
    match op {
        "relu" => relu_op(cfg),
        "softmax" => softmax_op(cfg),
        name => {
            let func = function_of(name).ok_or_else(|| OpError::Unknown(name.into()))?;
            smooth_op(name, func, cfg)
        }
    }
}

/// The whole-range points at scale `f`: 0, +-1, powers of two and neighbours to the limit, random values.
fn whole_range(f: u32, seed: u64, random: usize) -> Vec<i64> {
    let lim = (1i64 << (62 - f)) - 1;
    let mut xs = vec![0, 1, -1, lim, -lim];
    for j in 0..62 - f {
        let p = 1i64 << j;
        xs.extend([p, p - 1, p + 1, -p, -p + 1, -p - 1]);
    }
    let mut prg = Prg::new(&Seed::from_u64(seed), 5);
    xs.extend(
        prg.elems(random)
            .iter()
            .enumerate()
            .map(|(i, v)| ((*v as i64) >> (f + 2 + (i as u32 % 40))).clamp(-lim, lim)),
    );
    xs
}

/// Inputs at scale `f` (the table's) to the engine's `2f`, with random low bits.
fn to_fine(xs: &[i64], f: u32, seed: u64) -> Vec<i64> {
    let mut prg = Prg::new(&Seed::from_u64(seed), 6);
    xs.iter()
        .map(|x| (x << f) + (prg.elem() >> (64 - f)) as i64)
        .collect()
}

/// Batches of `batch` (a multiple of 8) elements; the last is padded with zeros.
fn batches(ys: &[i64], batch: usize) -> Vec<Vec<i64>> {
    let b = batch.max(8).div_ceil(8) * 8;
    ys.chunks(b)
        .map(|c| {
            let mut v = c.to_vec();
            v.resize(c.len().div_ceil(8) * 8, 0);
            v
        })
        .collect()
}

/// One protocol run on a batch: the sum of the parties' outputs, the traffic, the time.
struct Ran {
    sum: Vec<i64>,
    provider: cryptmed_channel::CommStats,
    client: cryptmed_channel::CommStats,
    offline_bytes: u64,
    seconds: f64,
}

/// Runs both parties on `ys` split into random shares; `seconds` is the
/// slower party's online time (material is taken before the clock starts).
fn run_shares<M>(
    ys: &[i64],
    seed: u64,
    deal: impl FnOnce(&mut cryptmed_prep::Dealer),
    take: impl Fn(&mut dyn PrepSource) -> M + Sync,
    eval: impl Fn(&mut Ctx<'_>, &[Elem], &M) -> Result<Vec<Elem>, ProtocolError> + Sync,
) -> Result<Ran, ProtocolError> {
    let y: Vec<Elem> = ys.iter().map(|v| *v as Elem).collect();
    let (y0, y1) = split(&y, seed);
    let party = |ctx: &mut Ctx<'_>, p: &mut dyn PrepSource, share: &[Elem]| {
        let m = take(p);
        let t = Instant::now();
        let out = eval(ctx, share, &m);
        (out, t.elapsed().as_secs_f64())
    };
    let PairRun {
        provider: (a, ta),
        client: (b, tb),
        provider_stats,
        client_stats,
        offline_bytes,
    } = run_pair(
        seed,
        deal,
        |ctx, p| party(ctx, p, &y0),
        |ctx, p| party(ctx, p, &y1),
    );
    let (a, b) = (a?, b?);
    Ok(Ran {
        sum: cryptmed_ring::add(&a, &b)
            .into_iter()
            .map(|v| v as i64)
            .collect(),
        provider: provider_stats,
        client: client_stats,
        offline_bytes: offline_bytes as u64,
        seconds: ta.max(tb),
    })
}

/// The evaluator of one smooth layer: direct on the full table or symmetric on the half table.
enum Layer {
    Direct(Piecewise),
    Symmetric(Symmetric),
}

impl Layer {
    fn out_frac_bits(&self) -> u32 {
        match self {
            Layer::Direct(t) => t.out_frac_bits,
            Layer::Symmetric(s) => s.half.out_frac_bits,
        }
    }

    /// The twin for an input at `f + k` whose truncation rounded up or not.
    fn twin(&self, y: i64, k: u32, up: bool) -> i64 {
        match self {
            Layer::Direct(t) => t.eval_shifted(y, k, up),
            Layer::Symmetric(s) => s.eval_shifted(y, k, up),
        }
    }
}

/// One smooth function (or leaky ReLU) over its sweep, as the engine runs it.
fn smooth_op(name: &str, func: Function, cfg: &OpConfig) -> Result<OpResult, OpError> {
    let fp = FixedPoint::default();
    let f = fp.frac_bits();
    let table_err = |source| OpError::Table {
        op: name.into(),
        source,
    };
    let table = cryptmed_approx::table(func, cfg.precision, f).map_err(table_err)?;
    let (layer, method) = match cfg.method {
        SmoothMethod::Symmetric => {
            match cryptmed_approx::half_table(func, cfg.precision, f).map_err(table_err)? {
                Some(s) => (Layer::Symmetric(s), SmoothMethod::Symmetric),
                None => (Layer::Direct(table.clone()), SmoothMethod::Direct),
            }
        }
        SmoothMethod::Direct => (Layer::Direct(table.clone()), SmoothMethod::Direct),
    };
    let (lo, hi) = (
        table.breakpoints[0] - (2 << f),
        table.breakpoints[table.breakpoints.len() - 1] + (2 << f),
    );
    let stride = cfg.stride.max(1);
    let mut xs: Vec<i64> = (lo..=hi).step_by(stride as usize).collect();
    for b in &table.breakpoints {
        xs.extend([b - 1, *b, b + 1]);
    }
    let range = whole_range(f, 2, 4096);
    xs.extend(&range);
    let ys = to_fine(&xs, f, 3);
    let sweep = format!(
        "{} of [{:.4}, {:.4}] ({} breakpoints +-1), {} whole-range points to +-2^{}; inputs at scale {} with random low bits, truncated in the step",
        if stride == 1 {
            "every unit".to_string()
        } else {
            format!("every {stride}th unit")
        },
        fp.decode(lo as Elem),
        fp.decode(hi as Elem),
        table.breakpoints.len(),
        range.len(),
        62 - f,
        2 * f
    );
    let cmp = Ppa::default();
    let k = f;
    let mut tot = Totals::new();
    let so = (2f64).powi(layer.out_frac_bits() as i32);
    let floor = if func.is_relative() {
        func.relative_floor(f)
    } else {
        REL_FLOOR
    };
    for (bi, ys) in batches(&ys, cfg.batch).iter().enumerate() {
        let n = ys.len();
        let seed = 11 + bi as u64;
        let proto = |source| OpError::Protocol {
            op: name.into(),
            source,
        };
        let (run, trace) = match &layer {
            Layer::Direct(t) => (
                run_shares(
                    ys,
                    seed,
                    |d| smooth::deal(&cmp, d, n, t, k),
                    |p| smooth::take(&cmp, p, n, t, k),
                    |ctx, x, m| smooth::eval(&cmp, ctx, x, t, m),
                )
                .map_err(proto)?,
                smooth::trace(&cmp, n, t, k),
            ),
            Layer::Symmetric(s) => (
                run_shares(
                    ys,
                    seed,
                    |d| symmetric::deal(&cmp, d, n, s, k),
                    |p| symmetric::take(&cmp, p, n, s, k),
                    |ctx, x, m| symmetric::eval(&cmp, ctx, x, s, m),
                )
                .map_err(proto)?,
                symmetric::trace(&cmp, n, s),
            ),
        };
        tot.add_run(&run, n, &trace);
        for (y, g) in ys.iter().zip(&run.sum) {
            // The input the table evaluated: the truncated one (rounded up when
            // the secure result matches that twin), or y for a fixed-point slope.
            let x = y >> k;
            let up = [false, true]
                .into_iter()
                .find(|up| (g - layer.twin(*y, k, *up)).abs() <= 1)
                .unwrap_or(false);
            let fractional = table.pieces[table.piece_of(x)].fractional();
            let xr = if fractional {
                *y as f64 / (2f64).powi(2 * f as i32)
            } else {
                (x + i64::from(up)) as f64 / (2f64).powi(f as i32)
            };
            if xr.abs() > 1e12 {
                continue; // f64 cannot hold the reference there (the tables' tails are exact)
            }
            let (gr, want) = (*g as f64 / so, reference(func, xr));
            let e = (gr - want).abs();
            tot.abs = tot.abs.max(e);
            let rel_ok = match func {
                Function::Exp => xr >= cryptmed_approx::EXP_LO,
                Function::Reciprocal => true,
                _ => want.abs() >= floor,
            };
            if rel_ok && want != 0.0 {
                tot.rel = tot.rel.max(e / want.abs());
            }
            if !(matches!(func, Function::Exp) && xr < cryptmed_approx::EXP_LO) {
                tot.vs_bound = tot.vs_bound.max(func.error(xr, gr, f));
            }
            tot.within &= func.meets(xr, gr, cfg.precision, f);
        }
    }
    Ok(tot.result(name, cfg, method, func.bound(cfg.precision), sweep))
}

/// ReLU with the truncation from scale `2f` fused in.
fn relu_op(cfg: &OpConfig) -> Result<OpResult, OpError> {
    let fp = FixedPoint::default();
    let f = fp.frac_bits();
    let mut xs: Vec<i64> = (-(2i64 << f)..=(2 << f))
        .step_by(cfg.stride.max(1) as usize)
        .collect();
    let range = whole_range(f, 1, 4096);
    xs.extend(&range);
    let ys = to_fine(&xs, f, 4);
    let cmp = Ppa::default();
    let mut tot = Totals::new();
    for (bi, ys) in batches(&ys, cfg.batch).iter().enumerate() {
        let n = ys.len();
        let run = run_shares(
            ys,
            7 + bi as u64,
            |d| relu::deal(&cmp, d, n, f),
            |p| relu::take(&cmp, p, n, f),
            |ctx, x, m| relu::eval(&cmp, ctx, x, f, m),
        )
        .map_err(|source| OpError::Protocol {
            op: "relu".into(),
            source,
        })?;
        tot.add_run(&run, n, &relu::trace(&cmp, n));
        for (y, g) in ys.iter().zip(&run.sum) {
            let want = (*y as f64 / (2f64).powi(2 * f as i32)).max(0.0);
            if want > 1e12 {
                continue;
            }
            let e = (fp.decode(*g as Elem) - want).abs();
            tot.abs = tot.abs.max(e);
            if want >= REL_FLOOR {
                tot.rel = tot.rel.max(e / want);
            }
        }
    }
    let bound = 2.0 * fp.ulp();
    tot.within = tot.abs <= bound;
    tot.vs_bound = tot.abs;
    let sweep = format!(
        "every unit of [-2, 2] and {} whole-range points; inputs at scale {} with random low bits, truncated in the opening",
        range.len(),
        2 * f
    );
    Ok(tot.result("relu", cfg, SmoothMethod::Direct, bound, sweep))
}

/// Softmax over rows of 10 logits at scale `2f` (module docs).
fn softmax_op(cfg: &OpConfig) -> Result<OpResult, OpError> {
    let fp = FixedPoint::default();
    let f = fp.frac_bits();
    let table_err = |source| OpError::Table {
        op: "softmax".into(),
        source,
    };
    let exp = cryptmed_approx::table(Function::Exp, cfg.precision, f).map_err(table_err)?;
    let recip =
        cryptmed_approx::table(Function::Reciprocal, cfg.precision, f).map_err(table_err)?;
    let t = softmax::Tables {
        exp: &exp,
        reciprocal: &recip,
    };
    let classes = 10usize;
    let scale = (2f64).powi(2 * f as i32);
    let mut prg = Prg::new(&Seed::from_u64(8), 1);
    let mut rows: Vec<Vec<i64>> = Vec::new();
    let lim = (1i64 << 60) - 1; // 2^28 at scale 32: differences stay below 2^62
    let rows_per_spread = (cfg.batch / classes / 45).clamp(4, 200);
    for e in -16..=28 {
        let spread = (2f64).powi(e);
        for i in 0..rows_per_spread {
            let center = ((prg.elem() >> 11) as f64 / (1u64 << 53) as f64 - 0.5) * spread;
            let mut row: Vec<i64> = (0..classes)
                .map(|_| {
                    let u = (prg.elem() >> 11) as f64 / (1u64 << 53) as f64 - 0.5;
                    (((center + u * spread) * scale) as i64).clamp(-lim, lim)
                })
                .collect();
            match i % 4 {
                1 => row[3] = row[7], // a tie
                2 => {
                    let v = row[0];
                    row.fill(v); // all equal
                }
                3 => row[i % classes] = lim, // one huge against the rest
                _ => {}
            }
            rows.push(row);
        }
    }
    let logits: Vec<i64> = rows.iter().flatten().copied().collect();
    let cmp = Ppa::default();
    let shift = f;
    let mut tot = Totals::new();
    let out = (2f64).powi(softmax::output_scale(&t) as i32);
    let per_batch = (cfg.batch / classes).max(1);
    for (bi, chunk) in logits.chunks(per_batch * classes).enumerate() {
        let batch = chunk.len() / classes;
        let run = run_shares(
            chunk,
            9 + bi as u64,
            |d| softmax::deal(&cmp, d, batch, classes, shift, &t),
            |p| softmax::take(&cmp, p, batch, classes, shift, &t),
            |ctx, x, m| softmax::eval(&cmp, ctx, x, classes, &t, m),
        )
        .map_err(|source| OpError::Protocol {
            op: "softmax".into(),
            source,
        })?;
        tot.add_run(
            &run,
            chunk.len(),
            &softmax::trace(&cmp, batch, classes, shift, &t),
        );
        for (row, g) in chunk.chunks(classes).zip(run.sum.chunks(classes)) {
            let row: Vec<f64> = row.iter().map(|v| *v as f64 / scale).collect();
            let m = row.iter().copied().fold(f64::MIN, f64::max);
            let s: f64 = row.iter().map(|v| (v - m).exp()).sum();
            for (v, g) in row.iter().zip(g) {
                let want = (v - m).exp() / s;
                let e = (*g as f64 / out - want).abs();
                tot.abs = tot.abs.max(e);
                if want >= SOFTMAX_REL_FLOOR {
                    tot.rel = tot.rel.max(e / want);
                }
                let vs = e / (SOFTMAX_REL_BOUND * want + SOFTMAX_ABS_BOUND) * SOFTMAX_REL_BOUND;
                tot.vs_bound = tot.vs_bound.max(vs);
                tot.within &= e <= SOFTMAX_REL_BOUND * want + SOFTMAX_ABS_BOUND;
            }
        }
    }
    let sweep = format!(
        "{} rows of {classes} logits at scale {} over spreads 2^-16..2^28 (random, ties, all equal, one at 2^28), error against f64 softmax",
        rows.len(),
        2 * f
    );
    Ok(tot.result(
        "softmax",
        cfg,
        SmoothMethod::Direct,
        SOFTMAX_REL_BOUND,
        sweep,
    ))
}

/// Softmax's stated bound: `|p - p_true| <= SOFTMAX_REL_BOUND p_true +
/// SOFTMAX_ABS_BOUND`: two and a half times exp's relative bound (two
/// exponentials meet in a ratio; the reciprocal's error is squared away by
/// the Newton step, see `cryptmed_protocols::softmax`).
pub const SOFTMAX_REL_BOUND: f64 = 2.5e-4;
/// See [`SOFTMAX_REL_BOUND`]: exp's absolute error below `e^-14.5` and saturation below -16 (`e^-16` = 1.1e-7), and the last units.
pub const SOFTMAX_ABS_BOUND: f64 = 2e-7;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_operations_get_their_own_wording() {
        let e = run("swish", &OpConfig::default()).unwrap_err();
        let m = e.to_string();
        assert!(matches!(e, OpError::Unknown(_)), "{e:?}");
        assert!(
            m.contains("unknown operation `swish` for `bench --op`") && m.contains("softmax"),
            "{m}"
        );
        assert!(!m.contains("network"), "{m}");
    }

    #[test]
    fn every_operation_runs_a_small_sweep_within_its_bound() {
        let cfg = OpConfig {
            stride: 4099,
            batch: 4096,
            ..OpConfig::default()
        };
        for op in OPS {
            let r = run(op, &cfg).unwrap();
            assert!(r.within_bound, "{op}: {r:?}");
            // Softmax over 10 classes: a 4-level tournament (24), exp,
            // reciprocal, and the Newton step's products, truncation, product.
            let rounds = match op {
                "softmax" => 41,
                "relu" | "leaky_relu" => 6,
                _ => 7,
            };
            assert!(r.elements > 300 && r.online_rounds == rounds, "{op}: {r:?}");
            assert!(r.offline_bytes_per_element > 0.0 && r.online_bytes_per_element > 0.0);
        }
        let sym = run(
            "sigmoid",
            &OpConfig {
                method: SmoothMethod::Symmetric,
                ..cfg
            },
        )
        .unwrap();
        assert_eq!((sym.method, sym.online_rounds), ("symmetric", 13));
        assert!(sym.within_bound);
    }
}
