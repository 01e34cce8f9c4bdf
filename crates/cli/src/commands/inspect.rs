//! `cryptmed inspect`: how the engine will run an ONNX model, with the
//! predicted cost of every step.

use std::path::PathBuf;

use cryptmed_engine::{ComparisonKind, Link};
use serde::Serialize;

use super::RevealArg;

/// Arguments of `cryptmed inspect`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  cryptmed inspect models/securenn-lenet.onnx\n  cryptmed inspect models/breast-cancer-gelu.onnx --json\n  cryptmed inspect models/kidney-relu.onnx --schema kidney-schema.json\n\nThe input columns: index, name, unit and plausible range (the model's feature schema), and the range the\nengine admits for each (a power of two from the first layer's weights: values beyond it are refused)."
)]
pub(crate) struct Args {
    /// The model (ONNX).
    model: PathBuf,
    #[command(flatten)]
    schema: super::records::SchemaArgs,
    /// Output policy to plan for.
    #[arg(long, value_enum, default_value_t = RevealArg::Label)]
    reveal: RevealArg,
    #[command(flatten)]
    smooth: super::SmoothArgs,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Serialize)]
struct Layer {
    name: String,
    op: String,
    shape: Vec<usize>,
    params: usize,
}

/// One comparison backend's predicted costs for a record.
#[derive(Debug, Serialize)]
struct Backend {
    comparison: &'static str,
    online_bytes: u64,
    rounds: u64,
    dealer_bytes: u64,
    largest_step_dealer_bytes: u64,
    lan_seconds: f64,
    wan_seconds: f64,
    lan_session_seconds: f64,
    wan_session_seconds: f64,
}

impl Backend {
    fn of(model: &cryptmed_engine::Model, kind: ComparisonKind, wan: Link) -> Backend {
        let m = model.with_comparison(kind);
        let t = m.predict(1);
        Backend {
            comparison: kind.name(),
            online_bytes: t.bytes(),
            rounds: t.rounds(),
            dealer_bytes: m.offline_bytes(1),
            largest_step_dealer_bytes: m.largest_step_bytes(1),
            lan_seconds: m.predicted_latency(1, Link::LAN).as_secs_f64(),
            wan_seconds: m.predicted_latency(1, wan).as_secs_f64(),
            lan_session_seconds: m.predicted_session_latency(1, Link::LAN).as_secs_f64(),
            wan_session_seconds: m.predicted_session_latency(1, wan).as_secs_f64(),
        }
    }
}

#[derive(Debug, Serialize)]
struct Step {
    name: String,
    protocol: String,
    online_bytes: u64,
    rounds: u64,
}

/// One input column of a record, as the client must give it.
#[derive(Debug, Serialize)]
struct Column {
    /// Counted from 1, as refusals name it.
    index: usize,
    name: Option<String>,
    unit: Option<String>,
    /// The schema's plausible range.
    plausible: Option<[f64; 2]>,
    /// The engine's limit `L`: values in `[-L, L]` are admitted (a power of two).
    admitted: f64,
    /// Extra fractional bits the column is encoded with (`e_j`).
    extra_bits: i32,
}

/// The columns of `model`'s records (its network's schema, limits and exponents).
fn columns(model: &cryptmed_engine::Model) -> Vec<Column> {
    let net = model.network();
    let features = net.schema.as_ref().map(|s| &s.features[..]).unwrap_or(&[]);
    let limits = model.input_limits().unwrap_or(&[]);
    let exponents = &model.plan().input_exponents;
    (0..net.input_len())
        .map(|j| {
            let f = features.get(j);
            Column {
                index: j + 1,
                name: f.map(|f| f.name.clone()),
                unit: f.and_then(|f| f.unit.clone()),
                plausible: f.and_then(|f| f.range),
                admitted: limits.get(j).copied().unwrap_or(f64::NAN),
                extra_bits: exponents.get(j).copied().unwrap_or(0),
            }
        })
        .collect()
}

/// Columns printed one per line up to this many (images are summarised).
const SHOWN_COLUMNS: usize = 64;

/// Whether the columns are shown one by one: named, or few.
fn one_by_one(cols: &[Column]) -> bool {
    cols.len() <= SHOWN_COLUMNS || cols.iter().any(|c| c.name.is_some())
}

/// The smallest and largest admitted range.
fn admitted_span(cols: &[Column]) -> [f64; 2] {
    let lo = cols
        .iter()
        .map(|c| c.admitted)
        .fold(f64::INFINITY, f64::min);
    let hi = cols.iter().map(|c| c.admitted).fold(0.0, f64::max);
    [lo, hi]
}

/// Prints the columns: one per line for a named or small record, else the
/// span of their admitted ranges.
fn print_columns(cols: &[Column]) {
    let named = cols.iter().any(|c| c.name.is_some());
    if !one_by_one(cols) {
        let [lo, hi] = admitted_span(cols);
        println!(
            "input columns: {} values, not named; admitted ranges from +-{lo} to +-{hi}\n",
            cols.len()
        );
        return;
    }
    if !named {
        println!("input columns (not named: the model has no feature schema; --schema gives one):");
    } else {
        println!("input columns:");
    }
    println!(
        "  {:>5}  {:<28} {:<12} {:<26} {:>20} {:>5}",
        "index", "name", "unit", "plausible range", "admitted range", "+bits"
    );
    for c in cols {
        let plausible = c.plausible.map_or("-".to_string(), |[lo, hi]| {
            format!("[{}, {}]", significant(lo), significant(hi))
        });
        let admitted = if c.admitted.is_finite() && c.admitted > 0.0 {
            format!("+-{} (2^{})", c.admitted, c.admitted.log2().round())
        } else {
            "-".to_string()
        };
        println!(
            "  {:>5}  {:<28} {:<12} {:<26} {:>20} {:>5}",
            c.index,
            c.name.as_deref().unwrap_or("-"),
            c.unit.as_deref().unwrap_or("-"),
            plausible,
            admitted,
            c.extra_bits
        );
    }
    println!();
}

/// `v` to six significant digits, as short as it prints.
fn significant(v: f64) -> f64 {
    format!("{v:.5e}").parse().unwrap_or(v)
}

/// Runs `cryptmed inspect`.
pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    let mut net = super::load_network(&args.model)?;
    args.schema.apply(&mut net)?;
    // With its weights: the per-column limits come from the first layer's.
    let model = super::compile(net.clone(), args.reveal.into(), &args.smooth)?;
    let cols = columns(&model);
    let layers: Vec<Layer> = net
        .nodes
        .iter()
        .map(|n| Layer {
            name: n.name.clone(),
            op: n.op.name().into(),
            shape: n.shape.clone(),
            params: n.op.param_count(),
        })
        .collect();
    let steps: Vec<Step> = model
        .step_traces(1)
        .into_iter()
        .map(|(name, protocol, t)| Step {
            name,
            protocol,
            online_bytes: t.bytes(),
            rounds: t.rounds(),
        })
        .collect();
    let total = model.predict(1);
    let (online, rounds, setup, offline) = (
        total.bytes(),
        total.rounds(),
        model.setup_bytes(),
        model.offline_bytes(1),
    );
    let wan = args.smooth.link.link()?;
    let backends: Vec<Backend> = ComparisonKind::ALL
        .into_iter()
        .map(|k| Backend::of(&model, k, wan))
        .collect();
    if args.json {
        let o = serde_json::json!({
            "comparison": model.config().comparison.name(), "backends": backends,
            "wan": {"rtt_seconds": wan.rtt, "bandwidth_bits_per_second": wan.bandwidth},
            "model": args.model.display().to_string(), "input_shape": net.input_shape, "params": net.param_count(),
            "columns": if one_by_one(&cols) { serde_json::json!(cols) } else { serde_json::Value::Null },
            "admitted_range": admitted_span(&cols), "layers": layers, "steps": steps, "online_bytes": online, "online_rounds": rounds,
            "offline_bytes": offline, "setup_bytes": setup, "digest": model.architecture_digest().iter().map(|b| format!("{b:02x}")).collect::<String>(),
        });
        println!("{}", serde_json::to_string_pretty(&o)?);
        return Ok(());
    }
    println!(
        "{}: input {:?}, {} parameters\n",
        args.model.display(),
        net.input_shape,
        net.param_count()
    );
    print_columns(&cols);
    println!("imported layers (after folding):");
    println!(
        "  {:<24} {:<16} {:<16} {:>10}",
        "name", "op", "shape", "params"
    );
    for l in &layers {
        println!(
            "  {:<24} {:<16} {:<16} {:>10}",
            l.name,
            l.op,
            format!("{:?}", l.shape),
            l.params
        );
    }
    println!("\nsecure plan (batch 1, predicted from the protocols' cost formulas):");
    println!(
        "  {:<24} {:<44} {:>12} {:>7}",
        "step", "protocol", "online B", "rounds"
    );
    for s in &steps {
        println!(
            "  {:<24} {:<44} {:>12} {:>7}",
            s.name, s.protocol, s.online_bytes, s.rounds
        );
    }
    println!(
        "\ntotal per record ({}): {online} bytes online in {rounds} rounds; {offline} bytes from the dealer; setup once per session: {setup} bytes",
        model.config().comparison.name()
    );
    print_backends(&backends, wan);
    Ok(())
}

/// Both comparison backends side by side, one record.
fn print_backends(backends: &[Backend], wan: Link) {
    println!(
        "\ncomparison backends (one record; LAN {} ms / {} Gbit/s, WAN {} ms / {} Mbit/s; online = rounds x RTT + bytes of the busier direction / rate + key bytes evaluated at this machine's measured speed; session = online and the dealer's material, generated and sent):",
        Link::LAN.rtt * 1e3,
        Link::LAN.bandwidth / 1e9,
        wan.rtt * 1e3,
        wan.bandwidth / 1e6
    );
    println!(
        "  {:<8} {:>14} {:>7} {:>16} {:>18} {:>10} {:>10} {:>12} {:>12}",
        "backend",
        "online B",
        "rounds",
        "dealer B",
        "largest step B",
        "LAN s",
        "WAN s",
        "LAN sess. s",
        "WAN sess. s"
    );
    for b in backends {
        println!(
            "  {:<8} {:>14} {:>7} {:>16} {:>18} {:>10.4} {:>10.3} {:>12.4} {:>12.3}",
            b.comparison,
            b.online_bytes,
            b.rounds,
            b.dealer_bytes,
            b.largest_step_dealer_bytes,
            b.lan_seconds,
            b.wan_seconds,
            b.lan_session_seconds,
            b.wan_session_seconds
        );
    }
}
