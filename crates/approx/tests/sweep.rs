//! Every table against the true function over the whole fixed-point range:
//! every unit in the last place across the fitted interval and its tails'
//! edges, powers of two out to the range's limits, and random values. Also
//! checks the headroom the secure truncation needs (`|sum| < 2^61`).

use cryptmed_approx::piecewise::poly_sum_exact;
use cryptmed_approx::{Function, Precision, reference, table};
use proptest::prelude::*;

const F: u32 = 16;

fn inputs(t: &cryptmed_approx::Piecewise) -> Vec<i64> {
    let lim = (1i64 << (62 - F)) * (1 << F) - 1;
    let (lo, hi) = (
        t.breakpoints[0] - (2 << F),
        t.breakpoints[t.breakpoints.len() - 1] + (2 << F),
    );
    let mut xs: Vec<i64> = (lo..=hi).collect();
    for b in &t.breakpoints {
        xs.extend([b - 1, *b, b + 1]);
    }
    for k in 0..62 {
        let p = 1i64 << k;
        if p <= lim {
            xs.extend([p, p - 1, -p, -p + 1]);
        }
    }
    xs.extend([lim, -lim, 0]);
    xs
}

/// Worst error of the table (the twin) against the true function; secure adds at most one ulp.
fn worst(func: Function, p: Precision, xs: &[i64]) -> (f64, f64) {
    let t = table(func, p, F).unwrap();
    let s = (1u64 << F) as f64;
    let mut worst = 0.0f64;
    let mut at = 0.0;
    for x in xs {
        let piece = &t.pieces[t.piece_of(*x)];
        let sum = poly_sum_exact(piece, *x);
        assert!(
            sum.unsigned_abs() < 1u128 << 61,
            "{}: headroom violated at {x}",
            func.name()
        );
        let got = t.eval_fixed(*x) as f64 / s + 1.0 / s; // the secure round-up, worst case
        let got_lo = t.eval_fixed(*x) as f64 / s;
        let want = reference(func, *x as f64 / s);
        let e = (got - want).abs().max((got_lo - want).abs());
        let e = if func.is_relative() {
            let floor = func.relative_floor(F);
            if want.abs() >= floor {
                e / want.abs()
            } else {
                e / floor
            }
        } else {
            e
        };
        if e > worst {
            worst = e;
            at = *x as f64 / s;
        }
    }
    (worst, at)
}

#[test]
fn every_table_meets_its_bound_over_the_whole_range() {
    for p in [Precision::Accurate, Precision::Fast] {
        for func in Function::ALL.into_iter().chain([
            Function::Elu { alpha: 0.5 },
            Function::Elu {
                alpha: 1.6732632423543772,
            },
        ]) {
            let t = table(func, p, F).unwrap();
            let (e, at) = worst(func, p, &inputs(&t));
            println!(
                "{:<11} {:?}: {:>3} breakpoints, degree {}, {} scales, max error {:.2e} at {:.4} (bound {:.0e})",
                func.name(),
                p,
                t.breakpoints.len(),
                t.max_degree(),
                t.scales().len(),
                e,
                at,
                func.bound(p)
            );
            assert!(
                e <= func.bound(p),
                "{} {:?}: {e} > {}",
                func.name(),
                p,
                func.bound(p)
            );
        }
    }
}

/// Pieces are fitted independently, so at a breakpoint the table may step
/// back by up to twice its error bound; it must never step back more.
#[test]
fn monotone_functions_never_step_back_more_than_twice_the_bound() {
    for func in [
        Function::Sigmoid,
        Function::Tanh,
        Function::Erf,
        Function::Softplus,
        Function::Exp,
    ] {
        let t = table(func, Precision::Accurate, F).unwrap();
        let (lo, hi) = (
            t.breakpoints[0] - 4,
            t.breakpoints[t.breakpoints.len() - 1] + 4,
        );
        let b = func.bound(Precision::Accurate);
        let s = (1u64 << F) as f64;
        let mut prev = t.eval_fixed(lo);
        for x in lo + 1..=hi {
            let y = t.eval_fixed(x);
            let scale = if func.is_relative() {
                (prev as f64).abs().max(func.relative_floor(F) * s)
            } else {
                s
            };
            let slack = (2.0 * b * scale).ceil() as i64 + 1;
            assert!(
                y >= prev - slack,
                "{} steps back at {x}: {prev} -> {y}",
                func.name()
            );
            prev = prev.max(y);
        }
    }
}

proptest! {
    #[test]
    fn random_inputs_within_bound(x in -(1i64 << 45)..(1i64 << 45), i in 0usize..10) {
        let func = Function::ALL[i];
        let (e, _) = worst(func, Precision::Accurate, &[x, x >> 20, x >> 28]);
        prop_assert!(e <= func.bound(Precision::Accurate));
    }
}

/// The Python module (python/cryptmed_approx.py, used for training) computes
/// the same functions: its committed outputs on a grid equal `eval_f64`.
/// Regenerate after a table change with
/// `cryptmed approx --export approx.json && python3 python/cryptmed_approx.py --grid approx.json > python/approx_grid.json`.
#[test]
fn python_module_agrees_on_a_grid() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../python/approx_grid.json");
    let grid: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut checked = 0;
    for func in Function::ALL {
        let t = table(func, Precision::Accurate, F).unwrap();
        let g = &grid[func.name()];
        let (xs, ys) = (g["x"].as_array().unwrap(), g["y"].as_array().unwrap());
        for (x, y) in xs.iter().zip(ys) {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            let rust = t.eval_f64(x);
            assert!(
                (rust - y).abs() <= 1e-9 * (1.0 + y.abs()),
                "{}({x}): python {y}, rust {rust}",
                func.name()
            );
            // and both are within two units of the fixed-point twin
            let twin = t.eval_fixed((x * 65536.0).floor() as i64) as f64 / 65536.0;
            if x.abs() < 1e5 {
                assert!(
                    (twin - y).abs()
                        <= 2.0 / 65536.0 + 1e-3 * y.abs().max(0.0) * f64::from(func.is_relative()),
                    "{}({x}): twin {twin}, python {y}",
                    func.name()
                );
            }
            checked += 1;
        }
    }
    assert!(checked > 3000, "only {checked} grid points");
}
