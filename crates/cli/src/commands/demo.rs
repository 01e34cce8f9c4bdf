//! `cryptmed demo`: a complete secure diagnosis on this machine. A dealer, a
//! provider and a client run on loopback ports over TLS with certificates
//! made in memory; the bundled model (a breast-cancer MLP trained on the
//! Wisconsin data set) diagnoses bundled real records, and each secure
//! prediction is printed next to the plaintext one.

use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;
use cryptmed_engine::fidelity::softmax;
use cryptmed_engine::{Fidelity, Prediction, Reveal};
use cryptmed_model::reference;
use cryptmed_service::client::{ClientSetup, diagnose_with_progress};
use cryptmed_service::provider::{Backend, ProviderSetup};
use cryptmed_service::tls::{CertSet, Identity, RoleNames, generate_certs};
use cryptmed_service::{Limits, Security};
use serde::Serialize;

use super::RevealArg;
use super::records::{RecordArgs, SchemaArgs};

/// The bundled model: `python/train.py medical`, breast-cancer, ReLU (see models/README.md).
const MODEL: &[u8] = include_bytes!("../../../../models/breast-cancer-relu.onnx");
/// Five real records from the model's held-out test split (testdata/README.md).
const RECORDS: &[u8] = include_bytes!("../../../../testdata/breast_cancer_demo.csv");

/// Arguments of `cryptmed demo`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  cryptmed demo\n  cryptmed demo --reveal logits --json\n  cryptmed demo --model models/diabetes-relu.onnx --input testdata/diabetes_test.csv\n\nCSV columns are matched to the model's by header name. A labelled CSV (a `label` column, or a last column\nmore than the model takes, such as the test splits in testdata/) is read without its labels."
)]
pub(crate) struct Args {
    /// A model to use instead of the bundled one.
    #[arg(long, value_name = "FILE.onnx")]
    model: Option<PathBuf>,
    /// Records to use instead of the bundled ones (CSV, NPY, IDX, PNG, JPEG, DICOM or a folder of images).
    #[arg(long, value_name = "FILE")]
    input: Option<PathBuf>,
    #[command(flatten)]
    records: RecordArgs,
    #[command(flatten)]
    schema: SchemaArgs,
    /// What the client may learn.
    #[arg(long, value_enum, default_value_t = RevealArg::Label)]
    reveal: RevealArg,
    #[command(flatten)]
    smooth: super::SmoothArgs,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Serialize)]
struct Row {
    label: usize,
    class_name: Option<String>,
    probabilities: Option<Vec<f64>>,
    logits: Option<Vec<f64>>,
    plaintext_label: usize,
    plaintext_logits: Vec<f64>,
    /// Columns outside their plausible range (let through by --allow-implausible).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    implausible: Vec<String>,
}

#[derive(Debug, Serialize, Default)]
struct Cost {
    online_bytes: u64,
    /// The session's rounds: the larger of the two parties' counts, as
    /// `inspect` predicts them (one batch).
    online_rounds: u64,
    /// The rounds the client counted: one fewer when the provider's last
    /// message (the client's result) is one-way, as a label or
    /// probabilities are.
    client_rounds: u64,
    offline_bytes: u64,
    setup_bytes: u64,
    online_seconds: f64,
    offline_seconds: f64,
}

fn security(certs: &CertSet, role: &str) -> anyhow::Result<Security> {
    let (c, k) = certs.role(role).context("certificate")?;
    Ok(Security::tls(
        certs.ca_pem.as_bytes(),
        Some(Identity::from_pem(c.as_bytes(), k.as_bytes())?),
        true,
    )?)
}

/// Whether a CSV carries labels (read apart, not diagnosed): a `label`
/// column the model does not take, or, without one, a value per record more
/// than the model takes (the last column, as in the test splits).
fn has_labels(source: &cryptmed_input::Source, net: &cryptmed_model::Network) -> bool {
    let Some(table) = source.table() else {
        return false;
    };
    let named = |n: &str| net.schema.as_ref().is_some_and(|s| s.names().contains(&n));
    match table.names() {
        Some(names) if names.iter().any(|n| n == "label") => !named("label"),
        _ => table.width() == net.input_len() + 1,
    }
}

/// Runs `cryptmed demo`.
pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    let (mut net, model_name) = match &args.model {
        Some(p) => (super::load_network(p)?, p.display().to_string()),
        None => (
            cryptmed_model::onnx::load_bytes(MODEL, "breast-cancer-relu")?,
            "bundled breast-cancer-relu.onnx".to_string(),
        ),
    };
    args.schema.apply(&mut net)?;
    let (file, fitted) = match &args.input {
        // A labelled file is read without its labels.
        Some(p) => {
            let labelled = has_labels(&args.records.read(p, false)?, &net);
            (
                p.display().to_string(),
                args.records.load(p, &net, labelled)?,
            )
        }
        None => {
            let file = "bundled breast_cancer_demo.csv";
            (
                file.to_string(),
                args.records.load_csv(file, RECORDS, &net)?,
            )
        }
    };
    let set = fitted.records.clone();
    let reveal: Reveal = args.reveal.into();
    let model = super::compile(net.clone(), reveal, &args.smooth)?;
    super::check_records(&file, &set, &model)?;
    let records = set.records;

    let certs = generate_certs(
        &RoleNames::all(&["localhost".into(), "127.0.0.1".into()]),
        false,
    )?;
    let limits = Limits::default();
    let stop = Arc::new(AtomicBool::new(false));
    let dl = TcpListener::bind("127.0.0.1:0")?;
    let dealer_addr = format!("localhost:{}", dl.local_addr()?.port());
    let (sec, st) = (security(&certs, "dealer")?, stop.clone());
    std::thread::spawn(move || cryptmed_service::dealer::serve(dl, sec, limits, st));
    let pl = TcpListener::bind("127.0.0.1:0")?;
    let provider_addr = format!("localhost:{}", pl.local_addr()?.port());
    let setup = Arc::new(ProviderSetup {
        model: model.clone(),
        public: net.public(),
        dealer: dealer_addr.clone(),
        security: security(&certs, "provider")?,
        limits,
        backend: Backend::Fixed,
    });
    let st = stop.clone();
    std::thread::spawn(move || cryptmed_service::provider::serve(pl, setup, st));

    let client = ClientSetup {
        server: provider_addr,
        dealer: dealer_addr,
        security: security(&certs, "client")?,
        limits,
        batch: records.len().max(1),
        reveal: Some(reveal),
    };
    let mut preds: Vec<Prediction> = Vec::new();
    let mut cost = Cost::default();
    let (mut dealer_session, mut dealer_batches) = (0u64, 0u64);
    let info = diagnose_with_progress(
        &client,
        super::layer_progress(),
        |_| Ok(records.clone()),
        |_, p, r| {
            preds.extend_from_slice(p);
            let e = &r.engine;
            cost.online_bytes += e.online_bytes_sent + e.online_bytes_recv;
            cost.client_rounds += e.online_rounds;
            // Every byte on both dealer links, as the dealer counted them.
            dealer_session = r.dealer_session_bytes;
            dealer_batches += r.dealer_batch_bytes;
            cost.setup_bytes = e.setup_bytes;
            cost.online_seconds += e.online_seconds;
            cost.offline_seconds += e.offline_seconds;
            Ok(())
        },
    );
    stop.store(true, Ordering::SeqCst);
    let info = info?;
    cost.offline_bytes = dealer_session + dealer_batches;
    // One batch: the session's rounds are the plan's.
    cost.online_rounds = model.predict(records.len()).rounds();

    let names = info.class_names.clone();
    let mut fidelity = Fidelity::default();
    for (x, p) in records.iter().zip(&preds) {
        fidelity.add(&model, x, p)?;
    }
    let rows: Vec<Row> = records
        .iter()
        .zip(&preds)
        .enumerate()
        .map(|(k, (x, p))| {
            let plain = reference::evaluate(&net, x);
            Row {
                label: p.label,
                class_name: names.as_ref().and_then(|n| n.get(p.label)).cloned(),
                probabilities: p.probabilities.clone(),
                logits: p.logits.clone(),
                plaintext_label: reference::label(&net, &plain),
                plaintext_logits: plain,
                implausible: fitted.implausible_in(k),
            }
        })
        .collect();
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({ "predictions": rows, "cost": cost, "fidelity": fidelity })
            )?
        );
        return Ok(());
    }
    println!(
        "CryptMed demo: {model_name}, {} records, output policy `{}`",
        rows.len(),
        reveal.name()
    );
    println!("dealer, provider and client on loopback over TLS (certificates made in memory)\n");
    let name = |i: usize| {
        names
            .as_ref()
            .and_then(|n| n.get(i))
            .cloned()
            .unwrap_or_else(|| i.to_string())
    };
    println!("record  secure diagnosis       plaintext diagnosis    match");
    for (i, (r, x)) in rows.iter().zip(&records).enumerate() {
        println!(
            "{:<7} {:<22} {:<22} {}",
            i,
            name(r.label),
            name(r.plaintext_label),
            if r.label == r.plaintext_label {
                "yes"
            } else {
                "NO"
            }
        );
        if !r.implausible.is_empty() {
            println!(
                "        implausible (let through): {}",
                r.implausible.join(", ")
            );
        }
        if let Some(p) = &r.probabilities {
            let plain = softmax(&model.reference_logits(x));
            println!(
                "        secure probabilities {:?}, plaintext {:?}",
                p.iter()
                    .map(|v| (v * 1e4).round() / 1e4)
                    .collect::<Vec<_>>(),
                plain
                    .iter()
                    .map(|v| (v * 1e4).round() / 1e4)
                    .collect::<Vec<_>>()
            );
        }
        if let Some(l) = &r.logits {
            println!(
                "        secure logits {:?}, plaintext {:?}",
                l.iter()
                    .map(|v| (v * 1e4).round() / 1e4)
                    .collect::<Vec<_>>(),
                r.plaintext_logits
                    .iter()
                    .map(|v| (v * 1e4).round() / 1e4)
                    .collect::<Vec<_>>()
            );
        }
    }
    let counted = if cost.client_rounds == cost.online_rounds {
        String::new()
    } else {
        format!(
            " (the client counts {}: the provider's last message, the result, needs no reply)",
            cost.client_rounds
        )
    };
    println!(
        "\ncost: online {} bytes in {} rounds{counted}, {:.1} ms; dealer {} bytes ({:.1} ms); one-time setup {} bytes (masked weights)",
        cost.online_bytes,
        cost.online_rounds,
        cost.online_seconds * 1e3,
        cost.offline_bytes,
        cost.offline_seconds * 1e3,
        cost.setup_bytes
    );
    println!("{}", super::fidelity_line(&fidelity));
    println!(
        "the provider saw no record and no result; the client saw no weight; the dealer saw neither"
    );
    Ok(())
}
