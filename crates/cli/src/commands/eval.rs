//! `cryptmed eval`: secure versus plaintext accuracy of a model over a
//! labelled test set, with the dealer and both parties in one process.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use cryptmed_engine::Fidelity;
use cryptmed_engine::local::run_local;
use cryptmed_input::{InputError, Target};
use cryptmed_model::{Network, reference};
use serde::Serialize;

use super::records::{Fitted, RecordArgs, SchemaArgs};
use super::{RevealArg, UsageError};

/// Arguments of `cryptmed eval`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  cryptmed eval --model models/breast-cancer-relu.onnx --data breast-cancer\n  cryptmed eval --model models/securenn-lenet.onnx --data mnist --limit 1000 --json\n  cryptmed eval --model m.onnx --data records.csv   (a `label` column, or else the last: the integer label)\n  cryptmed eval --model m.onnx --schema m.schema.json --data records.csv --ignore-column patient_id\n\nNamed data sets come from scripts/prepare_data.py (data/<name>/test.csv, data/mnist), or the committed subsets in testdata/.\nCSV columns are matched to the model's by header name when the model names them (as diagnose reads them)."
)]
pub(crate) struct Args {
    /// The model (ONNX).
    #[arg(long, value_name = "FILE.onnx")]
    model: PathBuf,
    /// A prepared data set (breast-cancer, diabetes, heart-disease, kidney, mnist, fashion-mnist) or a labelled CSV.
    #[arg(long, value_name = "NAME|FILE")]
    data: String,
    #[command(flatten)]
    records: RecordArgs,
    #[command(flatten)]
    schema: SchemaArgs,
    /// Evaluate only the first N records.
    #[arg(long)]
    limit: Option<usize>,
    /// Records per batch.
    #[arg(long, default_value_t = 8)]
    batch: usize,
    /// Output policy (label uses the secure argmax).
    #[arg(long, value_enum, default_value_t = RevealArg::Label)]
    reveal: RevealArg,
    #[command(flatten)]
    smooth: super::SmoothArgs,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Serialize)]
struct EvalResult {
    model: String,
    data: String,
    records: usize,
    plaintext_accuracy: f64,
    secure_accuracy: f64,
    agreement: f64,
    online_bytes_per_record: f64,
    online_rounds: u64,
    online_seconds_per_record: f64,
    offline_bytes_per_record: f64,
    batch: usize,
    /// Values outside their column's plausible range, evaluated with --allow-implausible.
    #[serde(skip_serializing_if = "is_zero")]
    implausible_values: usize,
    /// Secure logits and probabilities against the f64 reference.
    #[serde(flatten)]
    fidelity: Fidelity,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// The committed subset of a named data set in `testdata/`, and what it is.
fn subset(data: &str) -> (String, &'static str) {
    match data {
        "mnist" => (
            "mnist_test_200.csv".into(),
            "the first 200 MNIST test digits",
        ),
        "fashion-mnist" => (
            "fashion_mnist_test_200.csv".into(),
            "the first 200 Fashion-MNIST test images",
        ),
        _ => (
            format!("{}_test.csv", data.replace('-', "_")),
            "the same test split",
        ),
    }
}

/// Finds the labelled records for `data` (a labelled CSV, or a data set's
/// name) for `net` (a CSV's columns by name, its label column kept), read
/// with the record flags `ra`; returns the file read (for messages) and the
/// records. A named set falls back to its committed subset in `testdata/`
/// when `data/` is not prepared, and says so on standard error.
/// Only the first `first` records are kept and checked (`--limit`).
fn dataset(
    data: &str,
    net: &Network,
    ra: &RecordArgs,
    first: usize,
) -> anyhow::Result<(String, Fitted)> {
    let path = Path::new(data);
    if path.is_file() || path.is_dir() {
        return Ok((data.into(), ra.load_first(path, net, true, first)?));
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let bases = [PathBuf::from("."), root];
    for base in &bases {
        let dir = base.join("data").join(data);
        if dir.join("test.csv").is_file() {
            let p = dir.join("test.csv");
            return Ok((
                p.display().to_string(),
                ra.load_first(&p, net, true, first)?,
            ));
        }
        for (img, lab) in [
            ("t10k-images.idx3-ubyte", "t10k-labels.idx1-ubyte"),
            ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
        ] {
            if dir.join(img).is_file() {
                let (img, lab) = (dir.join(img), dir.join(lab));
                let source = ra.read(&img, false)?;
                let mut records = source.records(&Target::of(net))?;
                let labels = cryptmed_input::load_labels(&lab)?;
                if labels.len() != records.records.len() {
                    return Err(InputError::Format {
                        file: lab.display().to_string(),
                        reason: format!(
                            "{} labels for the {} records of {}: refusing to pair them",
                            labels.len(),
                            records.records.len(),
                            img.display()
                        ),
                    }
                    .into());
                }
                records.labels = Some(labels);
                records.keep_first(first);
                let file = img.display().to_string();
                return Ok((file.clone(), ra.plausible(&file, records, net)?));
            }
        }
    }
    let (name, what) = subset(data);
    for base in &bases {
        let sub = base.join("testdata").join(&name);
        if sub.is_file() {
            eprintln!(
                "note: data/{data} is not prepared (python3 scripts/prepare_data.py {data}); \
                 using the committed testdata/{name} ({what})"
            );
            return Ok((
                sub.display().to_string(),
                ra.load_first(&sub, net, true, first)?,
            ));
        }
    }
    bail!(
        "no data set `{data}`: run `python3 scripts/prepare_data.py {data}`, or give a CSV file with a `label` column (or the label last)"
    )
}

/// Runs `cryptmed eval`.
pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    if args.limit == Some(0) {
        return Err(UsageError("--limit 0 evaluates nothing: give at least 1".into()).into());
    }
    let mut net = super::load_network(&args.model)?;
    args.schema.apply(&mut net)?;
    let first = args.limit.unwrap_or(usize::MAX);
    let (file, fitted) = dataset(&args.data, &net, &args.records, first)?;
    let implausible = fitted.implausible.len();
    let mut set = fitted.records;
    let labels = set
        .labels
        .clone()
        .with_context(|| format!("{file}: the data set has no labels"))?;
    let model = super::compile(net.clone(), args.reveal.into(), &args.smooth)?;
    let public = super::compile(net.public(), args.reveal.into(), &args.smooth)?;
    let n = args.limit.unwrap_or(usize::MAX).min(set.records.len());
    set.records.truncate(n);
    // Every record is checked before any runs, so a refusal names the file and line.
    super::check_records(&file, &set, &model)?;
    let records = &set.records[..];
    let bar = std::io::stderr()
        .is_terminal()
        .then(|| indicatif::ProgressBar::new(n as u64));
    let (mut secure_ok, mut plain_ok, mut agree) = (0usize, 0usize, 0usize);
    let mut fidelity = Fidelity::default();
    let (mut bytes, mut rounds, mut online, mut offline) = (0u64, 0u64, 0f64, 0u64);
    let t = Instant::now();
    // Sessions of up to 256 records, so progress shows and memory stays bounded.
    for (c, chunk) in records.chunks(256).enumerate() {
        let run = run_local(&model, &public, chunk, args.batch)?;
        for (k, (x, p)) in chunk.iter().zip(&run.predictions).enumerate() {
            let want = reference::classify(&net, x);
            let label = labels[c * 256 + k];
            secure_ok += usize::from(p.label == label);
            plain_ok += usize::from(want == label);
            agree += usize::from(p.label == want);
            fidelity.add(&model, x, p)?;
        }
        for (pr, cr) in run.provider.iter().zip(&run.client) {
            bytes += pr.online_bytes_sent + pr.online_bytes_recv;
            rounds = rounds.max(pr.online_rounds.max(cr.online_rounds));
            online += pr.online_seconds.max(cr.online_seconds);
        }
        offline += run.dealer.iter().map(|d| d.offline_bytes).sum::<u64>();
        if let Some(b) = &bar {
            b.inc(chunk.len() as u64);
        }
    }
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    tracing::info!(seconds = t.elapsed().as_secs_f64(), "evaluation finished");
    let f = n.max(1) as f64;
    let r = EvalResult {
        model: args.model.display().to_string(),
        data: args.data.clone(),
        records: n,
        plaintext_accuracy: plain_ok as f64 / f,
        secure_accuracy: secure_ok as f64 / f,
        agreement: agree as f64 / f,
        online_bytes_per_record: bytes as f64 / f,
        online_rounds: rounds,
        online_seconds_per_record: online / f,
        offline_bytes_per_record: offline as f64 / f,
        batch: args.batch,
        implausible_values: implausible,
        fidelity,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        println!(
            "{} on {} ({} records, batch {})",
            r.model, r.data, r.records, r.batch
        );
        println!(
            "plaintext accuracy {:.4}, secure accuracy {:.4}, agreement {:.4}",
            r.plaintext_accuracy, r.secure_accuracy, r.agreement
        );
        println!(
            "per record: {:.1} KB online, {:.1} KB from the dealer, {:.2} ms online; {} rounds per batch",
            r.online_bytes_per_record / 1e3,
            r.offline_bytes_per_record / 1e3,
            r.online_seconds_per_record * 1e3,
            r.online_rounds
        );
        println!("{}", super::fidelity_line(&r.fidelity));
        if implausible > 0 {
            println!(
                "{implausible} values outside their plausible range were evaluated (--allow-implausible)"
            );
        }
    }
    Ok(())
}
