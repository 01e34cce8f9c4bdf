//! `cryptmed approx`: export the smooth-function tables (for training with
//! the exact secure functions) or check them against the true functions.

use anyhow::Context;
use cryptmed_approx::{Function, Precision, reference, table};
use serde::Serialize;

use super::PrecisionArg;

/// Arguments of `cryptmed approx`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  cryptmed approx --export approx.json\n  cryptmed approx --check --json\n\nThe exported JSON is what python/cryptmed_approx.py reads."
)]
pub(crate) struct Args {
    /// Write every table (breakpoints and coefficients, integers and reals) to FILE.
    #[arg(long, value_name = "FILE")]
    export: Option<std::path::PathBuf>,
    /// Measure every table's largest error over the whole fixed-point range.
    #[arg(long)]
    check: bool,
    /// Which tables.
    #[arg(long, value_enum, default_value_t = PrecisionArg::Accurate)]
    precision: PrecisionArg,
    /// Fractional bits.
    #[arg(long, default_value_t = 16)]
    frac_bits: u32,
    /// With --check: one JSON object per function.
    #[arg(long)]
    json: bool,
    /// With --export: also export ELU at this alpha (repeatable; alpha 1 is always there).
    #[arg(long, value_name = "ALPHA")]
    elu_alpha: Vec<f64>,
}

#[derive(Debug, Serialize)]
struct Check {
    function: &'static str,
    breakpoints: usize,
    degree: usize,
    truncations: usize,
    max_error: f64,
    relative: bool,
    bound: f64,
    worst_input: f64,
}

/// Runs `cryptmed approx`.
pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    let precision: Precision = args.precision.into();
    let f = args.frac_bits;
    if let Some(path) = &args.export {
        let json = cryptmed_approx::export_json(precision, f, &args.elu_alpha)?;
        std::fs::write(path, json).with_context(|| format!("writing {}", path.display()))?;
        eprintln!(
            "wrote {} ({} functions)",
            path.display(),
            Function::ALL.len() + args.elu_alpha.iter().filter(|a| **a != 1.0).count()
        );
    }
    if args.check || args.export.is_none() {
        let mut rows = Vec::new();
        for func in Function::ALL {
            let t = table(func, precision, f)?;
            let s = (2f64).powi(f as i32);
            let so = (2f64).powi(t.out_frac_bits as i32);
            let lo = t.breakpoints[0] - (2 << f);
            let hi = t.breakpoints[t.breakpoints.len() - 1] + (2 << f);
            let lim = (1i64 << (62 - f)) * (1i64 << f) - 1;
            let extremes = (0..62)
                .flat_map(|k| [1i64 << k, -(1i64 << k)])
                .filter(|v| v.abs() <= lim);
            let (mut worst, mut at) = (0.0f64, 0.0);
            for x in (lo..=hi).chain(extremes).chain([lim, -lim]) {
                let xr = x as f64 / s;
                // the twin and the secure result's possible extra unit
                for got in [t.eval_fixed(x), t.eval_fixed(x) + 1] {
                    let got = got as f64 / so;
                    if !func.meets(xr, got, precision, f) {
                        anyhow::bail!(
                            "{} misses its bound at {xr}: {got} (true {})",
                            func.name(),
                            reference(func, xr)
                        );
                    }
                    let e = if matches!(func, Function::Exp) && xr < cryptmed_approx::EXP_LO {
                        0.0 // the saturation to 0, checked by `meets`
                    } else {
                        func.error(xr, got, f)
                    };
                    if e > worst {
                        (worst, at) = (e, xr);
                    }
                }
            }
            rows.push(Check {
                function: func.name(),
                breakpoints: t.breakpoints.len(),
                degree: t.max_degree(),
                truncations: t.scales().len(),
                max_error: worst,
                relative: func.is_relative(),
                bound: func.bound(precision),
                worst_input: at,
            });
        }
        if args.json {
            for r in &rows {
                println!("{}", serde_json::to_string(r)?);
            }
        } else {
            println!(
                "{:<11} {:>11} {:>6} {:>11} {:>11} {:>9}  kind",
                "function", "breakpoints", "degree", "max error", "bound", "at x"
            );
            for r in &rows {
                println!(
                    "{:<11} {:>11} {:>6} {:>11.2e} {:>11} {:>9.3}  {}",
                    r.function,
                    r.breakpoints,
                    r.degree,
                    r.max_error,
                    format!("{:e}", r.bound),
                    r.worst_input,
                    if r.relative { "relative" } else { "absolute" }
                );
            }
        }
    }
    Ok(())
}
