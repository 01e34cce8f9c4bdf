//! Every table against the true function over the whole fixed-point range:
//! every unit in the last place across the fitted interval and its tails'
//! edges, powers of two out to the range's limits, and random values. Also
//! checks the headroom the secure truncation needs (`|sum| < 2^61`), for the
//! full tables, the symmetric half tables and shifted (fused-truncation) inputs.

use cryptmed_approx::piecewise::poly_sum_exact;
use cryptmed_approx::{Function, Piecewise, Precision, Symmetric, half_table, reference, table};
use proptest::prelude::*;

const F: u32 = 16;

/// The functions with tables, plus ELU at other alphas and leaky ReLU.
fn functions() -> Vec<Function> {
    Function::ALL
        .into_iter()
        .chain([
            Function::Elu { alpha: 0.5 },
            Function::Elu {
                alpha: cryptmed_approx::SELU_ALPHA,
            },
            Function::Elu { alpha: 4.0 },
            Function::LeakyRelu { alpha: 0.01 },
            Function::LeakyRelu { alpha: -1.5 },
        ])
        .collect()
}

/// Every ulp of `[first breakpoint - 2, last + 2]`, both neighbours of every
/// breakpoint, powers of two and their neighbours out to `2^(62-f)`, and the limits.
fn inputs(t: &Piecewise) -> Vec<i64> {
    let lim = (1i64 << 62) - 1;
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
        xs.extend([p, p - 1, p + 1, -p, -p + 1, -p - 1]);
    }
    xs.extend([lim, -lim, 0]);
    xs
}

/// Worst error of a twin (in the bound's unit, including the secure
/// protocol's possible deviations `units` from it) and where; asserts the
/// bound (or exp's saturation) at every input.
fn worst(
    func: Function,
    p: Precision,
    xs: &[i64],
    twin: &dyn Fn(i64) -> i64,
    o: u32,
    units: &[i64],
) -> (f64, f64) {
    let s = (2f64).powi(F as i32);
    let so = (2f64).powi(o as i32);
    let (mut worst, mut at) = (0.0f64, 0.0);
    for x in xs {
        let xr = *x as f64 / s;
        let y = twin(*x);
        for got in units.iter().map(|u| y + u) {
            let got = got as f64 / so;
            assert!(
                func.meets(xr, got, p, F),
                "{} {p:?}: {got} at {xr} (true {}, error {:.3e}, bound {:.0e})",
                func.name(),
                reference(func, xr),
                func.error(xr, got, F),
                func.bound(p)
            );
            let e = func.error(xr, got, F);
            if e > worst && (!matches!(func, Function::Exp) || xr >= cryptmed_approx::EXP_LO) {
                (worst, at) = (e, xr);
            }
        }
    }
    (worst, at)
}

fn headroom(func: Function, t: &Piecewise, xs: &[i64]) {
    for x in xs {
        for x in [*x, x.saturating_add(1)] {
            let sum = poly_sum_exact(&t.pieces[t.piece_of(x)], x);
            assert!(
                sum.unsigned_abs() < 1u128 << 61,
                "{}: headroom violated at {x}",
                func.name()
            );
        }
    }
}

#[test]
fn every_table_meets_its_bound_over_the_whole_range() {
    for p in [Precision::Accurate, Precision::Fast] {
        for func in functions() {
            let t = table(func, p, F).unwrap();
            let xs = inputs(&t);
            headroom(func, &t, &xs);
            let (e, at) = worst(func, p, &xs, &|x| t.eval_fixed(x), t.out_frac_bits, &[0, 1]);
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
        }
    }
}

/// The half tables, extended by their symmetry, meet the full tables' bounds.
#[test]
fn symmetric_tables_meet_the_same_bounds() {
    for p in [Precision::Accurate, Precision::Fast] {
        for func in Function::ALL {
            let Some(h): Option<Symmetric> = half_table(func, p, F).unwrap() else {
                continue;
            };
            let mut xs = inputs(&h.half);
            xs.extend(xs.iter().map(|x| -x).collect::<Vec<_>>());
            headroom(
                func,
                &h.half,
                &xs.iter().map(|x| x.abs()).collect::<Vec<_>>(),
            );
            let (e, at) = worst(
                func,
                p,
                &xs,
                &|x| h.eval_fixed(x),
                h.half.out_frac_bits,
                &[-1, 0, 1],
            );
            println!(
                "{:<11} {:?} symmetric: {:>3} breakpoints, max error {:.2e} at {:.4}",
                func.name(),
                p,
                h.half.breakpoints.len(),
                e,
                at
            );
        }
    }
}

/// Exp's bound is relative on all of `[-16, 8]` (the target is 1e-3)
/// and it saturates to exactly 0 below.
#[test]
fn exp_is_relative_on_the_whole_stated_range() {
    let t = table(Function::Exp, Precision::Accurate, F).unwrap();
    let so = (2f64).powi(t.out_frac_bits as i32);
    let mut worst = 0.0f64;
    for x in (-16i64 << F)..=(8i64 << F) {
        let xr = x as f64 / 65536.0;
        let want = reference(Function::Exp, xr);
        for got in [t.eval_fixed(x), t.eval_fixed(x) + 1] {
            worst = worst.max((got as f64 / so - want).abs() / want);
        }
    }
    assert!(worst <= 5e-4, "exp relative error {worst} on [-16, 8]");
    for x in [(-16i64 << F) - 1, -17 << F, -(1 << 40), -(1 << 62) + 1] {
        assert_eq!(t.eval_fixed(x), 0, "exp({x}) saturates to 0");
    }
}

/// The twin of a fused truncation: inputs at `f + k` bits agree with the
/// plain twin on the truncated input (the piece, the polynomial and integer
/// slopes), and fixed-point slopes apply to the finer input to within a unit.
#[test]
fn shifted_inputs_agree_with_the_truncated_twin() {
    let mut prg = 0x9E37_79B9_7F4A_7C15u64;
    for func in functions() {
        let t = table(func, Precision::Accurate, F).unwrap();
        for k in [1u32, 16, 24] {
            for i in 0..4000 {
                prg ^= prg << 13;
                prg ^= prg >> 7;
                prg ^= prg << 17;
                let y = ((prg as i64) >> (2 + i % 40)).clamp(-(1 << 61), 1 << 61);
                let x = y >> k;
                let p = &t.pieces[t.piece_of(x)];
                let got = t.eval_shifted(y, k, false);
                if p.fractional() {
                    // floor(slope y / 2^(slope_frac + k)), the slope rounded at 62 bits: within a unit.
                    let exact =
                        ((p.slope as i128 * y as i128) >> (p.slope_frac + k)) as i64 + p.offset;
                    assert!(
                        (got - exact).abs() <= 1,
                        "{} k={k} y={y}: {got} vs {exact}",
                        func.name()
                    );
                } else {
                    assert_eq!(got, t.eval_fixed(x), "{} k={k} y={y}", func.name());
                }
                // Rounded up, the piece stays and the rest sees x + 1.
                let p = &t.pieces[t.piece_of(x)];
                let single = Piecewise {
                    breakpoints: vec![],
                    pieces: vec![p.clone()],
                    ..t.clone()
                };
                let want_up = if p.fractional() {
                    assert!(p.coeffs.is_empty());
                    got
                } else {
                    single.eval_fixed(x + 1)
                };
                assert_eq!(
                    t.eval_shifted(y, k, true),
                    want_up,
                    "{} k={k} y={y}",
                    func.name()
                );
            }
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
        let so = (2f64).powi(t.out_frac_bits as i32);
        let mut prev = t.eval_fixed(lo);
        for x in lo + 1..=hi {
            let y = t.eval_fixed(x);
            let scale = if func.is_relative() {
                (prev as f64).abs()
            } else {
                so
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
    fn random_inputs_within_bound(x in -(1i64 << 45)..(1i64 << 45), i in 0usize..16) {
        let funcs = functions();
        let func = funcs[i % funcs.len()];
        let t = table(func, Precision::Accurate, F).unwrap();
        worst(func, Precision::Accurate, &[x, x >> 20, x >> 28, x >> 40], &|x| t.eval_fixed(x), t.out_frac_bits, &[0, 1]);
    }
}

/// The table function of an exported entry (name and optional alpha).
fn function_named(name: &str, alpha: Option<f64>) -> Function {
    match (name, alpha) {
        ("elu", Some(alpha)) => Function::Elu { alpha },
        _ => Function::ALL
            .into_iter()
            .find(|f| f.name() == name)
            .unwrap_or_else(|| panic!("the grid has an unknown function {name}")),
    }
}

/// Checks a grid (`[{function, alpha, x, y}]`) from the Python module against
/// the Rust evaluation of the same tables; returns the points checked.
fn check_python_grid(grid: &serde_json::Value, what: &str) -> usize {
    let mut checked = 0;
    let entries = grid
        .as_array()
        .unwrap_or_else(|| panic!("{what}: not a list of tables"));
    for e in entries {
        let func = function_named(e["function"].as_str().unwrap(), e["alpha"].as_f64());
        let t = table(func, Precision::Accurate, F).unwrap();
        let so = (2f64).powi(t.out_frac_bits as i32);
        let (xs, ys) = (e["x"].as_array().unwrap(), e["y"].as_array().unwrap());
        for (x, y) in xs.iter().zip(ys) {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            let rust = t.eval_f64(x);
            assert!(
                (rust - y).abs() <= 1e-9 * (1.0 + y.abs()),
                "{what}: {}({x}): python {y}, rust {rust}",
                func.name()
            );
            // and both are within two units of the fixed-point twin
            let twin = t.eval_fixed((x * 65536.0).floor() as i64) as f64 / so;
            if x.abs() < 1e5 {
                assert!(
                    (twin - y).abs()
                        <= 2.0 / 65536.0 + 1e-3 * y.abs() * f64::from(func.is_relative()),
                    "{what}: {}({x}): twin {twin}, python {y}",
                    func.name()
                );
            }
            checked += 1;
        }
    }
    checked
}

/// The committed grid (python/approx_grid.json) still matches the tables.
/// Regenerate after a table change with
/// `cryptmed approx --export approx.json --elu-alpha 0.5 --elu-alpha 2.5 && python3 python/cryptmed_approx.py --grid approx.json > python/approx_grid.json`.
#[test]
fn committed_python_grid_matches() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../python/approx_grid.json");
    let grid: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let checked = check_python_grid(&grid, "python/approx_grid.json");
    assert!(checked > 3000, "only {checked} grid points");
}

/// The Python module itself (python/cryptmed_approx.py, with numpy: the same
/// code path training runs with torch) on freshly exported tables, SELU and
/// ELU at other alphas included, agrees with the Rust twin.
#[test]
fn python_module_agrees_on_a_grid() {
    let dir = std::env::temp_dir().join(format!("cryptmed-approx-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let export = dir.join("approx.json");
    std::fs::write(
        &export,
        cryptmed_approx::export_json(Precision::Accurate, F, &[0.5, 2.5]).unwrap(),
    )
    .unwrap();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../python/cryptmed_approx.py"
    );
    let out = std::process::Command::new("python3")
        .arg(script)
        .arg("--grid")
        .arg(&export)
        .output()
        .unwrap_or_else(|e| {
            panic!("this test runs python/cryptmed_approx.py and needs `python3` on the PATH (with numpy): {e}")
        });
    let _ = std::fs::remove_dir_all(&dir);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("No module named 'numpy'"),
        "python/cryptmed_approx.py needs numpy: `python3 -m pip install numpy` ({stderr})"
    );
    assert!(
        out.status.success(),
        "python/cryptmed_approx.py --grid failed: {stderr}"
    );
    let grid: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("python/cryptmed_approx.py --grid printed no JSON grid: {e}"));
    let names: Vec<&str> = grid
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["function"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"selu") && names.iter().filter(|n| **n == "elu").count() == 3);
    let checked = check_python_grid(&grid, "python/cryptmed_approx.py");
    assert!(checked > 3000, "only {checked} grid points");
}
