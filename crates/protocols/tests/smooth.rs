//! The smooth functions securely: both parties on two threads over the
//! memory channel, inputs split into random shares, against the fixed-point
//! twin (exactly, up to the truncations' round-ups) and against the f64
//! function (the stated bound), with measured traffic equal to the closed
//! forms, online and offline.
//!
//! Inputs: every breakpoint and both neighbours, the saturation edges, 0,
//! +-1 unit, powers of two out to `2^62` (the largest magnitudes at the
//! working scale) and their neighbours, a dense sweep of the fitted interval
//! (every unit around each breakpoint, a fixed stride in between), and
//! proptest values over the whole range.

use cryptmed_approx::{Function, Piecewise, Precision, half_table, reference, table};
use cryptmed_prep::PrepSource;
use cryptmed_protocols::cost::Cost;
use cryptmed_protocols::softmax::{self, Tables};
use cryptmed_protocols::testing::{PairRun, run_pair};
use cryptmed_protocols::{Comparison, Ctx, Ppa, smooth, symmetric};
use cryptmed_ring::Elem;
use cryptmed_share::{Prg, Seed};
use proptest::prelude::*;

const F: u32 = 16;
const LIMIT: i64 = (1 << 62) - 1;

/// Splits `x` into two random additive shares.
fn split(x: &[Elem], seed: u64) -> (Vec<Elem>, Vec<Elem>) {
    let mut prg = Prg::new(&Seed::from_u64(seed), 99);
    let s0 = prg.elems(x.len());
    let s1 = cryptmed_ring::sub(x, &s0);
    (s0, s1)
}

/// Measured traffic equals the closed forms (online both parties, offline).
fn assert_costs<P, C>(
    run: &PairRun<P, C>,
    online: Cost,
    trace: &cryptmed_protocols::Trace,
    offline: u64,
    what: &str,
) {
    assert_eq!(
        run.provider_stats,
        trace.provider_stats(),
        "{what}: provider vs trace"
    );
    assert_eq!(
        run.client_stats,
        trace.client_stats(),
        "{what}: client vs trace"
    );
    assert_eq!(Cost::of(trace), online, "{what}: trace vs closed form");
    let (p, c) = (run.provider_stats, run.client_stats);
    assert_eq!(
        p.bytes_sent + p.bytes_recv,
        online.bytes,
        "{what}: measured bytes"
    );
    assert_eq!(
        c.bytes_sent + c.bytes_recv,
        online.bytes,
        "{what}: measured bytes"
    );
    assert_eq!(
        p.rounds.max(c.rounds),
        online.rounds,
        "{what}: measured rounds"
    );
    assert_eq!(
        run.offline_bytes as u64, offline,
        "{what}: dealer bytes vs closed form"
    );
}

/// The secure direct protocol on `ys` (at scale `f + k`), costs asserted.
fn run_direct(t: &Piecewise, ys: &[i64], k: u32, seed: u64, what: &str) -> Vec<i64> {
    let cmp = Ppa::default();
    let n = ys.len();
    let y: Vec<Elem> = ys.iter().map(|v| *v as Elem).collect();
    let (y0, y1) = split(&y, seed);
    let run = run_pair(
        seed,
        |d| smooth::deal(&cmp, d, n, t, k),
        |ctx: &mut Ctx<'_>, p: &mut dyn PrepSource| {
            let m = smooth::take(&cmp, p, n, t, k);
            smooth::eval(&cmp, ctx, &y0, t, &m).unwrap()
        },
        |ctx: &mut Ctx<'_>, p: &mut dyn PrepSource| {
            let m = smooth::take(&cmp, p, n, t, k);
            smooth::eval(&cmp, ctx, &y1, t, &m).unwrap()
        },
    );
    assert_costs(
        &run,
        smooth::cost(&cmp, n, t, k),
        &smooth::trace(&cmp, n, t, k),
        smooth::offline_bytes(&cmp, n, t, k),
        what,
    );
    cryptmed_ring::add(&run.provider, &run.client)
        .into_iter()
        .map(|v| v as i64)
        .collect()
}

/// Named edge inputs of a table at input scale (shifted by `k` later).
fn edges(t: &Piecewise) -> Vec<i64> {
    let mut xs = vec![0, 1, -1, 2, -2];
    for b in &t.breakpoints {
        xs.extend([b - 1, *b, b + 1]);
    }
    let (lo, hi) = (t.breakpoints[0], t.breakpoints[t.breakpoints.len() - 1]);
    xs.extend([lo - (2 << F), lo - (1 << F), hi + (1 << F), hi + (2 << F)]);
    xs
}

/// Dense sweep of `[lo - 2, hi + 2]`: every unit within 48 of a breakpoint, every `stride`-th elsewhere.
fn dense(t: &Piecewise, stride: i64) -> Vec<i64> {
    let (lo, hi) = (
        t.breakpoints[0] - (2 << F),
        t.breakpoints[t.breakpoints.len() - 1] + (2 << F),
    );
    let mut xs: Vec<i64> = (lo..=hi).step_by(stride as usize).collect();
    for b in &t.breakpoints {
        xs.extend(b - 48..=b + 48);
    }
    xs
}

/// Inputs at scale `f + k`: the table's inputs shifted (with a random low
/// part), the unit neighbours of each breakpoint at the fine scale, and the
/// largest magnitudes with powers of two out to them.
fn shifted_inputs(t: &Piecewise, k: u32, xs: &[i64], seed: u64) -> Vec<i64> {
    let mut prg = Prg::new(&Seed::from_u64(seed), 3);
    let mut ys: Vec<i64> = xs
        .iter()
        .map(|x| {
            let low = if k > 0 {
                (prg.elem() >> (64 - k)) as i64
            } else {
                0
            };
            (*x).clamp(-(LIMIT >> k), LIMIT >> k).wrapping_shl(k) + low
        })
        .collect();
    for b in &t.breakpoints {
        let tb = b << k;
        ys.extend([tb - 1, tb, tb + 1]);
    }
    for j in 0..62 {
        let p = 1i64 << j;
        ys.extend([p, p - 1, p + 1, -p, -p + 1, -p - 1]);
    }
    ys.extend([LIMIT, -LIMIT, LIMIT - 1, -LIMIT + 1]);
    ys
}

/// Checks secure results against the twin and the bound.
fn check(func: Function, p: Precision, t: &Piecewise, ys: &[i64], got: &[i64], k: u32, what: &str) {
    let so = (2f64).powi(t.out_frac_bits as i32);
    for (y, g) in ys.iter().zip(got) {
        let matched = [false, true].into_iter().find(|up| {
            let w = t.eval_shifted(*y, k, *up);
            *g == w || *g == w.wrapping_add(1)
        });
        let Some(up) = matched else {
            panic!(
                "{what}: f({y} at +{k} bits) = {g}, twin {} (or {} rounded up)",
                t.eval_shifted(*y, k, false),
                t.eval_shifted(*y, k, true)
            );
        };
        // Against f64 at the input the protocol used: x' (rounded up or not), or y itself for a fixed-point slope.
        let x = y >> k;
        let piece = &t.pieces[t.piece_of(x)];
        let xr = if piece.fractional() {
            *y as f64 / (2f64).powi((F + k) as i32)
        } else {
            (x + i64::from(up && k > 0)) as f64 / (2f64).powi(F as i32)
        };
        let gr = *g as f64 / so;
        if xr.abs() < 1e12 {
            assert!(
                func.meets(xr, gr, p, F),
                "{what}: f({xr}) = {gr}, true {}, error {:.3e} > bound {:.0e}",
                reference(func, xr),
                func.error(xr, gr, F),
                func.bound(p)
            );
        }
    }
}

/// Every table function plus SELU, ELU at other alphas and leaky ReLU.
fn functions() -> Vec<Function> {
    Function::ALL
        .into_iter()
        .chain([
            Function::Elu { alpha: 0.5 },
            Function::Elu { alpha: 2.5 },
            Function::LeakyRelu { alpha: 0.01 },
            Function::LeakyRelu { alpha: -0.75 },
        ])
        .collect()
}

#[test]
fn every_function_securely_equals_its_twin_and_meets_its_bound() {
    for (i, func) in functions().into_iter().enumerate() {
        for p in [Precision::Accurate, Precision::Fast] {
            let t = table(func, p, F).unwrap();
            let stride = if p == Precision::Accurate { 17 } else { 61 };
            let mut xs = edges(&t);
            xs.extend(dense(&t, stride));
            for k in [0u32, 16] {
                let what = format!("{} {p:?} k={k}", func.name());
                let ys = shifted_inputs(&t, k, &xs, i as u64);
                let got = run_direct(&t, &ys, k, 7 + i as u64, &what);
                check(func, p, &t, &ys, &got, k, &what);
            }
        }
    }
}

/// A made-up table exercising what the fitted ones do not: two scales in
/// one table next to a fixed-point slope, integer slopes other than 1, a
/// polynomial with an affine part, a finer output scale.
#[test]
fn a_mixed_table_equals_its_twin() {
    use cryptmed_approx::Piece;
    let mut prg = Prg::new(&Seed::from_u64(4), 7);
    let (f, o) = (16u32, 20u32);
    let breakpoints: Vec<i64> = (-4..=4).map(|v| (v as i64) << f).collect();
    let mut pieces = vec![Piece::linear(-0.37, f, o)];
    for j in 0..8i64 {
        let scale = [44, 48, 56, 60][j as usize % 4];
        let coeffs = (0..4u32)
            .map(|k| {
                let unit = (prg.elem() as i64 >> 11) as f64 / (1i64 << 52) as f64;
                (unit * (2f64).powi((scale - k * f) as i32 - 2)) as i64
            })
            .collect();
        pieces.push(Piece {
            slope: (j % 3) << (o - f),
            slope_frac: 0,
            offset: j << 10,
            center: ((j - 4) << f) + (1 << (f - 1)),
            coeffs,
            scale,
        });
    }
    pieces.push(Piece::identity(f));
    pieces[9].slope = 1 << (o - f);
    let t = Piecewise {
        breakpoints,
        pieces,
        frac_bits: f,
        out_frac_bits: o,
    };
    assert_eq!(t.validate(), Ok(()));
    let mut xs = edges(&t);
    xs.extend(dense(&t, 97));
    for k in [0u32, 7, 24] {
        let ys: Vec<i64> = shifted_inputs(&t, k, &xs, 5)
            .into_iter()
            .map(|y| y.clamp(-(1 << 40), 1 << 40)) // the identity tail at a finer scale needs headroom
            .collect();
        let got = run_direct(&t, &ys, k, 9, &format!("mixed k={k}"));
        for (y, g) in ys.iter().zip(&got) {
            let ok = [false, true].iter().any(|up| {
                let w = t.eval_shifted(*y, k, *up);
                *g == w || *g == w + 1
            });
            assert!(
                ok,
                "mixed k={k}: f({y}) = {g}, twin {}",
                t.eval_shifted(*y, k, false)
            );
        }
    }
}

#[test]
fn symmetric_evaluation_equals_its_twin_and_meets_the_bound() {
    let cmp = Ppa::default();
    for (i, func) in Function::ALL.into_iter().enumerate() {
        for p in [Precision::Accurate, Precision::Fast] {
            let Some(s) = half_table(func, p, F).unwrap() else {
                continue;
            };
            let full = table(func, p, F).unwrap();
            let mut xs = edges(&full);
            xs.extend(dense(
                &full,
                if p == Precision::Accurate { 37 } else { 131 },
            ));
            xs.extend(edges(&s.half).iter().flat_map(|x| [*x, -x]));
            for k in [0u32, 16] {
                let what = format!("{} {p:?} symmetric k={k}", func.name());
                let ys = shifted_inputs(&full, k, &xs, 40 + i as u64);
                let n = ys.len();
                let y: Vec<Elem> = ys.iter().map(|v| *v as Elem).collect();
                let (y0, y1) = split(&y, i as u64);
                let run = run_pair(
                    3 + i as u64,
                    |d| symmetric::deal(&cmp, d, n, &s, k),
                    |ctx: &mut Ctx<'_>, pp: &mut dyn PrepSource| {
                        let m = symmetric::take(&cmp, pp, n, &s, k);
                        symmetric::eval(&cmp, ctx, &y0, &s, &m).unwrap()
                    },
                    |ctx: &mut Ctx<'_>, pp: &mut dyn PrepSource| {
                        let m = symmetric::take(&cmp, pp, n, &s, k);
                        symmetric::eval(&cmp, ctx, &y1, &s, &m).unwrap()
                    },
                );
                assert_costs(
                    &run,
                    symmetric::cost(&cmp, n, &s),
                    &symmetric::trace(&cmp, n, &s),
                    symmetric::offline_bytes(&cmp, n, &s, k),
                    &what,
                );
                assert_eq!(symmetric::cost(&cmp, 1024, &s).rounds, 13, "{what}");
                let so = (2f64).powi(s.half.out_frac_bits as i32);
                for (yv, g) in ys
                    .iter()
                    .zip(cryptmed_ring::add(&run.provider, &run.client))
                {
                    let g = g as i64;
                    let up = [false, true].into_iter().find(|up| {
                        let w = s.eval_shifted(*yv, k, *up);
                        (g - w).abs() <= 1
                    });
                    let Some(up) = up else {
                        panic!(
                            "{what}: f({yv}) = {g}, twin {}",
                            s.eval_shifted(*yv, k, false)
                        );
                    };
                    let xr = ((yv >> k) + i64::from(up && k > 0)) as f64 / 65536.0;
                    if xr.abs() < 1e12 {
                        assert!(
                            func.meets(xr, g as f64 / so, p, F),
                            "{what}: f({xr}) = {}, true {}",
                            g as f64 / so,
                            reference(func, xr)
                        );
                    }
                }
            }
        }
    }
}

/// The cost targets and the documented formula
/// `2 (8 + 5.5 m + (m + 1 + G)/8 + 8)` bytes per element, 7 rounds, for every
/// table at both precisions and both input forms, at sizes that are and are
/// not multiples of 8 (where the bit vectors round up).
#[test]
fn closed_form_costs_for_every_table() {
    let cmp = Ppa::default();
    for func in functions() {
        for p in [Precision::Accurate, Precision::Fast] {
            let t = table(func, p, F).unwrap();
            let m = t.breakpoints.len() as f64;
            let g = t.scales().len();
            let gbits = if g >= 2 { g as f64 } else { 0.0 };
            let c = smooth::cost(&cmp, 1024, &t, 0);
            let per = c.bytes as f64 / 1024.0;
            let trunc = if g > 0 { 8.0 } else { 0.0 };
            assert_eq!(
                per,
                2.0 * (8.0 + 5.5 * m + (m + 1.0 + gbits) / 8.0 + trunc),
                "{}",
                func.name()
            );
            assert_eq!(c.rounds, if g > 0 { 7 } else { 6 }, "{}", func.name());
            assert!(
                per <= 750.0 && c.rounds <= 16,
                "{}: {per} bytes, {} rounds",
                func.name(),
                c.rounds
            );
            let sym = half_table(func, p, F).unwrap().map(|h| {
                (
                    symmetric::cost(&cmp, 1024, &h).bytes as f64 / 1024.0,
                    symmetric::offline_bytes(&cmp, 1024, &h, 16) as f64 / 1024.0,
                    h.half.breakpoints.len(),
                )
            });
            println!(
                "| {} | {p:?} | {} | {g} | {per} | {} | {} | {} | {} |",
                func.name(),
                t.breakpoints.len(),
                c.rounds,
                smooth::offline_bytes(&cmp, 1024, &t, 0) as f64 / 1024.0,
                smooth::offline_bytes(&cmp, 1024, &t, 16) as f64 / 1024.0,
                sym.map_or("—".to_string(), |(b, o, m)| format!(
                    "{m} bp: {b} / 13 / {o}"
                )),
            );
            for k in [0u32, 16] {
                for n in [1usize, 13, 64] {
                    let mut xs = edges(&t);
                    xs.truncate(n);
                    while xs.len() < n {
                        xs.push(xs.len() as i64 * 977);
                    }
                    let ys = shifted_inputs(&t, k, &xs, 1)[..n].to_vec();
                    run_direct(&t, &ys, k, 2, &format!("{} {p:?} k={k} n={n}", func.name()));
                }
            }
        }
    }
}

/// Softmax's bound, `|p - p_true| <= SOFTMAX_REL_BOUND p_true + SOFTMAX_ABS_BOUND`
/// (as `cryptmed_engine::opbench` states it): 2.5 times exp's relative bound.
const SOFTMAX_REL_BOUND: f64 = 2.5e-4;
const SOFTMAX_ABS_BOUND: f64 = 2e-7;

/// Softmax over 2 to 16 classes: logits over the whole input range at scale
/// `2f`, ties, all-equal rows, huge and tiny spreads; error against f64.
#[test]
fn softmax_over_the_whole_range_within_its_bound() {
    let cmp = Ppa::default();
    let (exp, recip) = (
        table(Function::Exp, Precision::Accurate, F).unwrap(),
        table(Function::Reciprocal, Precision::Accurate, F).unwrap(),
    );
    let t = Tables {
        exp: &exp,
        reciprocal: &recip,
    };
    assert_eq!(softmax::output_scale(&t), 60);
    let scale = (2f64).powi(32);
    for classes in [2usize, 3, 10, 16] {
        let mut prg = Prg::new(&Seed::from_u64(classes as u64), 4);
        let mut rows: Vec<Vec<i64>> = Vec::new();
        let uniform = |prg: &mut Prg, spread: f64| {
            ((prg.elem() >> 11) as f64 / (1u64 << 53) as f64 - 0.5) * spread
        };
        for spread in [1e-4, 0.5, 4.0, 24.0, 64.0, 1e4, 1e8] {
            for _ in 0..3 {
                rows.push(
                    (0..classes)
                        .map(|_| (uniform(&mut prg, spread) * scale) as i64)
                        .collect(),
                );
            }
        }
        let big = (1i64 << 60) - 1; // 2^28 at scale 32
        rows.push(vec![0; classes]);
        rows.push(vec![big; classes]);
        rows.push(vec![-big; classes]);
        let mut tie = vec![-(5i64 << 32); classes];
        tie[0] = 3 << 32;
        tie[classes - 1] = 3 << 32;
        rows.push(tie);
        let mut huge = vec![-big; classes];
        huge[classes / 2] = big;
        rows.push(huge);
        let mut ulp = vec![7i64 << 32; classes];
        ulp[1] += 1;
        rows.push(ulp);
        let batch = rows.len();
        let x: Vec<Elem> = rows.iter().flatten().map(|v| *v as Elem).collect();
        let (x0, x1) = split(&x, 3);
        let shift = 16;
        let run = run_pair(
            12,
            |d| softmax::deal(&cmp, d, batch, classes, shift, &t),
            |ctx: &mut Ctx<'_>, p: &mut dyn PrepSource| {
                let m = softmax::take(&cmp, p, batch, classes, shift, &t);
                softmax::eval(&cmp, ctx, &x0, classes, &t, &m).unwrap()
            },
            |ctx: &mut Ctx<'_>, p: &mut dyn PrepSource| {
                let m = softmax::take(&cmp, p, batch, classes, shift, &t);
                softmax::eval(&cmp, ctx, &x1, classes, &t, &m).unwrap()
            },
        );
        assert_costs(
            &run,
            softmax::cost(&cmp, batch, classes, shift, &t),
            &softmax::trace(&cmp, batch, classes, shift, &t),
            softmax::offline_bytes(&cmp, batch, classes, shift, &t),
            &format!("softmax {classes}"),
        );
        let out = (2f64).powi(softmax::output_scale(&t) as i32);
        let got: Vec<f64> = cryptmed_ring::add(&run.provider, &run.client)
            .iter()
            .map(|v| (*v as i64) as f64 / out)
            .collect();
        for (b, row) in rows.iter().enumerate() {
            let row: Vec<f64> = row.iter().map(|v| *v as f64 / scale).collect();
            let m = row.iter().cloned().fold(f64::MIN, f64::max);
            let s: f64 = row.iter().map(|v| (v - m).exp()).sum();
            for (c, v) in row.iter().enumerate() {
                let want = (v - m).exp() / s;
                let g = got[b * classes + c];
                assert!(
                    (g - want).abs() <= SOFTMAX_REL_BOUND * want + SOFTMAX_ABS_BOUND,
                    "classes {classes}, row {b}: p = {g}, want {want} (logits {row:?})"
                );
            }
            // The Newton step leaves the reciprocal's squared error only.
            let sum: f64 = got[b * classes..(b + 1) * classes].iter().sum();
            assert!(
                (sum - 1.0).abs() <= 1e-5,
                "classes {classes}, row {b}: probabilities sum to {sum}"
            );
        }
    }
    // Two classes: tournament 6, exp 7, reciprocal 7, products 1, truncation 1, product 1.
    assert_eq!(softmax::cost(&cmp, 1, 2, 16, &t).rounds, 23);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]
    #[test]
    fn random_inputs_over_the_whole_range(
        ys in proptest::collection::vec(-LIMIT..=LIMIT, 1..40),
        shifts in proptest::collection::vec(0u32..46, 1..40),
        i in 0usize..15,
        k in prop_oneof![Just(0u32), Just(16u32), 1u32..30],
        seed in any::<u64>(),
    ) {
        let funcs = functions();
        let func = funcs[i % funcs.len()];
        let t = table(func, Precision::Accurate, F).unwrap();
        // A mix of magnitudes: the raw values and values shifted towards the fitted interval.
        let ys: Vec<i64> = ys.iter().zip(shifts.iter().cycle()).map(|(y, s)| y >> s).collect();
        let got = run_direct(&t, &ys, k, seed, func.name());
        check(func, Precision::Accurate, &t, &ys, &got, k, func.name());
    }
}

/// The comparison's closed-form dealer bytes, for each chunk size.
#[test]
fn comparison_dealer_bytes_match_the_closed_form() {
    for chunk in 1..=6 {
        let cmp = Ppa::new(chunk);
        for (n, k) in [(1usize, 1usize), (13, 3), (64, 2)] {
            let r: Vec<Elem> = (0..n as u64)
                .map(|v| v.wrapping_mul(0x9E37_79B9_7F4A_7C15))
                .collect();
            let mut d = cryptmed_prep::Dealer::new(&Seed::from_u64(1), &Seed::from_u64(2));
            cmp.deal(&mut d, &r, k);
            assert_eq!(
                d.pending_bytes() as u64,
                cmp.offline_bytes(n, k),
                "chunk {chunk}"
            );
        }
    }
    assert_eq!(Ppa::default().offline_bytes(8, 1), 262);
}
