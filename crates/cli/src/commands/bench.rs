//! `cryptmed bench`: bytes, rounds and time of a benchmark network, run with
//! the dealer and both parties in one process over in-memory channels.

use std::time::Instant;

use anyhow::Context;
use cryptmed_engine::local::run_local;
use cryptmed_engine::{LayerReport, Reveal};
use cryptmed_model::{reference, zoo};
use serde::Serialize;

/// Arguments of `cryptmed bench`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  cryptmed bench --imaging --repeats 3\n  cryptmed bench --network resnet50 --repeats 3 --json results/imaging.json\n  cryptmed bench --network secureml-mlp --random-weights\n  cryptmed bench --network minionn-cifar --random-weights --json --inputs 3\n  cryptmed bench --op relu --json\n  cryptmed bench --op sigmoid --smooth symmetric\n  cryptmed bench --op softmax --json"
)]
pub(crate) struct Args {
    /// Benchmark network: secureml-mlp, chameleon-cnn, minionn-mnist, securenn-lenet, minionn-cifar, medical-mlp (default: all six); or an imaging network: resnet18, resnet50, densenet121, mobilenetv2, xception-pneumonia (generated into data/models by scripts/make_imaging_models.py and scripts/convert_pneumonia.py).
    #[arg(long, conflicts_with = "op")]
    network: Option<String>,
    /// Suite: every imaging network whose model file is in data/models (LAN, batch 1, three processes; peak memory per role).
    #[arg(long, conflicts_with_all = ["network", "op", "random_weights"])]
    imaging: bool,
    /// A single operation instead of a network: relu, leaky_relu, sigmoid, tanh, softplus, elu, selu, silu, gelu, gelu_tanh, erf, exp, reciprocal, softmax.
    #[arg(long)]
    op: Option<String>,
    /// With --op: sweep every N-th unit of the fitted interval (1: every unit, the default).
    #[arg(long, default_value_t = 1, value_name = "N")]
    stride: u64,
    #[command(flatten)]
    smooth: super::SmoothArgs,
    /// Elements per protocol run of the `--op` sweep (the sweep covers the whole input range in batches of this size).
    #[arg(long, default_value_t = 1 << 16)]
    elements: usize,
    /// Quick mode: seeded random weights, all three roles in this process over in-memory channels.
    #[arg(long)]
    random_weights: bool,
    /// Suite: network profiles to run (lan: loopback; wan: 40 ms round trip, 100 Mbit/s; switched: 0.2 ms round trip, 1 Gbit/s).
    #[arg(long, value_enum, default_value_t = Profile::Both)]
    profile: Profile,
    /// Suite: batches of one record per network and profile (latency samples).
    #[arg(long, default_value_t = 10)]
    repeats: usize,
    /// Suite: batches of 16 and of 64 records per network and profile (throughput samples; 0: batch 1 only).
    #[arg(long, default_value_t = 3)]
    batch_repeats: usize,
    /// Suite: a Python that has CrypTen 0.4.1, to measure it side by side in the same run
    /// (python/crypten_bench.py; see its header for the virtual environment).
    #[arg(long, value_name = "PYTHON")]
    crypten: Option<std::path::PathBuf>,
    /// Suite: write SVG charts (bytes and time per layer, against CrypTen, published work, LAN and WAN) to DIR.
    #[arg(long, value_name = "DIR")]
    plot: Option<std::path::PathBuf>,
    /// Suite: run nothing; re-render tables and charts from the JSON of an earlier run.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["random_weights", "op"])]
    from: Option<std::path::PathBuf>,
    /// Suite: print the results as Markdown tables (the README's results section).
    #[arg(long)]
    markdown: bool,
    /// Number of records to run (each as its own batch of one).
    #[arg(long, default_value_t = 10)]
    inputs: usize,
    /// Seed of the random weights and inputs.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Print JSON instead of tables; in the suite, `--json FILE` writes the list of results to FILE.
    #[arg(long, num_args = 0..=1, value_name = "FILE")]
    json: Option<Option<std::path::PathBuf>>,
}

/// `--profile` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Profile {
    /// Loopback as it is.
    Lan,
    /// 40 ms round trip and 100 Mbit/s between provider and client.
    Wan,
    /// Both.
    Both,
    /// 0.2 ms round trip and 1 Gbit/s between provider and client: a
    /// switched LAN, as `inspect` and `auto` model one (user-space relay).
    Switched,
}

/// One network's measured costs (the `--json` output).
#[derive(Debug, Serialize)]
struct BenchResult {
    network: String,
    comparison: &'static str,
    weights: &'static str,
    inputs: usize,
    online_bytes: u64,
    provider_to_client_bytes: u64,
    client_to_provider_bytes: u64,
    online_rounds: u64,
    setup_bytes: u64,
    one_record_total_bytes: u64,
    offline_bytes: u64,
    online_seconds: f64,
    offline_seconds: f64,
    max_abs_error: f64,
    argmax_agreement: f64,
    layers: Vec<LayerRow>,
}

#[derive(Debug, Serialize)]
struct LayerRow {
    name: String,
    protocol: String,
    bytes: u64,
    rounds: u64,
    seconds: f64,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    if v.is_empty() { 0.0 } else { v[v.len() / 2] }
}

/// Runs `cryptmed bench`.
pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    if let Some(op) = &args.op {
        use cryptmed_engine::opbench::{self, OpConfig, OpError};
        let cfg = OpConfig {
            precision: args.smooth.precision.into(),
            method: args.smooth.method.into(),
            batch: args.elements,
            stride: args.stride,
            comparison: match args.smooth.comparison {
                super::ComparisonArg::Fss => cryptmed_engine::ComparisonKind::Fss,
                _ => cryptmed_engine::ComparisonKind::Ppa,
            },
        };
        let r = opbench::run(op, &cfg).map_err(|e| match e {
            OpError::Unknown(_) => anyhow::Error::new(super::UsageError(e.to_string())),
            other => anyhow::Error::new(other),
        })?;
        if args.json.is_some() {
            println!("{}", serde_json::to_string_pretty(&r)?);
        } else {
            println!(
                "{} ({}, {}, {:?}): {} elements, {:.2} bytes/element online, {} rounds, {:.2} bytes/element offline, {:.3} us/element, max abs error {:.2e}, max rel error {:.2e}, bound {:.1e} ({})\nswept: {}",
                r.op,
                r.method,
                r.comparison,
                r.precision,
                r.elements,
                r.online_bytes_per_element,
                r.online_rounds,
                r.offline_bytes_per_element,
                r.seconds_per_element * 1e6,
                r.max_abs_error,
                r.max_rel_error,
                r.bound,
                if r.within_bound {
                    "met everywhere"
                } else {
                    "EXCEEDED"
                },
                r.sweep
            );
        }
        return Ok(());
    }
    if !args.random_weights || args.from.is_some() {
        return suite(&args);
    }
    let network = args
        .network
        .clone()
        .context("--random-weights needs --network NAME")?;
    let net = zoo::build(&network, args.seed).with_context(|| {
        format!(
            "unknown network `{network}`; choose one of {}",
            zoo::NAMES.join(", ")
        )
    })?;
    let model = super::compile(net.clone(), Reveal::Logits, &args.smooth)?;
    let inputs = zoo::random_inputs(&net, args.inputs.max(1), args.seed);
    let t = Instant::now();
    let run = run_local(&model, &model, &inputs, 1)?;
    tracing::info!(seconds = t.elapsed().as_secs_f64(), "bench finished");

    let mut max_err = 0.0f64;
    let mut agree = 0usize;
    for (x, p) in inputs.iter().zip(&run.predictions) {
        let want = reference::evaluate(&net, x);
        let got = p.logits.as_deref().unwrap_or(&[]);
        for (a, b) in got.iter().zip(&want) {
            max_err = max_err.max((a - b).abs());
        }
        let want_label = want
            .iter()
            .enumerate()
            .fold(0, |b, (j, v)| if *v > want[b] { j } else { b });
        agree += usize::from(p.label == want_label);
    }
    let (p0, c0) = (&run.provider[0], &run.client[0]);
    let layers = p0
        .layers
        .iter()
        .zip(&c0.layers)
        .enumerate()
        .map(
            |(i, (lp, lc)): (usize, (&LayerReport, &LayerReport))| LayerRow {
                name: lp.name.clone(),
                protocol: lp.protocol.clone(),
                bytes: lp.bytes_sent + lp.bytes_recv,
                rounds: lp.rounds.max(lc.rounds),
                seconds: median(
                    run.provider
                        .iter()
                        .zip(&run.client)
                        .map(|(p, c)| p.layers[i].seconds.max(c.layers[i].seconds))
                        .collect(),
                ),
            },
        )
        .collect();
    let online_bytes = p0.online_bytes_sent + p0.online_bytes_recv;
    let result = BenchResult {
        network,
        comparison: model.config().comparison.name(),
        weights: "random",
        inputs: inputs.len(),
        online_bytes,
        provider_to_client_bytes: p0.online_bytes_sent,
        client_to_provider_bytes: p0.online_bytes_recv,
        online_rounds: p0.online_rounds.max(c0.online_rounds),
        setup_bytes: run.setup_bytes,
        one_record_total_bytes: run.setup_bytes + online_bytes,
        offline_bytes: run.dealer[0].offline_bytes,
        online_seconds: median(
            run.provider
                .iter()
                .zip(&run.client)
                .map(|(p, c)| p.online_seconds.max(c.online_seconds))
                .collect(),
        ),
        offline_seconds: median(
            run.dealer
                .iter()
                .zip(&run.client)
                .map(|(d, c)| d.offline_seconds + c.offline_seconds)
                .collect(),
        ),
        max_abs_error: max_err,
        argmax_agreement: agree as f64 / inputs.len() as f64,
        layers,
    };
    if args.json.is_some() {
        println!("{}", serde_json::to_string_pretty(&result)?);
    } else {
        print_table(&result);
    }
    Ok(())
}

/// The suite: separate processes over TCP, both profiles, several batch sizes.
fn suite(args: &Args) -> anyhow::Result<()> {
    let rows: Vec<super::suite::Row> = match &args.from {
        Some(p) => serde_json::from_str(
            &std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?,
        )
        .with_context(|| format!("{} is not the JSON of a suite run", p.display()))?,
        None => {
            let networks = suite_networks(args)?;
            // Imaging networks run on the LAN profile only (batch 1).
            let profiles = match args.profile {
                _ if networks.iter().all(|n| super::suite::IMAGING.contains(n)) => {
                    vec!["lan"]
                }
                Profile::Lan => vec!["lan"],
                Profile::Wan => vec!["wan"],
                Profile::Both => vec!["lan", "wan"],
                Profile::Switched => vec!["switched"],
            };
            super::suite::run(&super::suite::Options {
                networks,
                profiles,
                repeats: args.repeats,
                batch_repeats: args.batch_repeats,
                comparison: args.smooth.comparison,
                link: args.smooth.link.link()?,
                crypten: args.crypten.clone(),
                checkpoint: args.json.clone().flatten(),
            })?
        }
    };
    if let Some(dir) = &args.plot {
        let files = super::suite::write_plots(dir, &rows)?;
        eprintln!("wrote {} charts to {}", files.len(), dir.display());
    }
    match &args.json {
        Some(Some(path)) => std::fs::write(path, serde_json::to_string_pretty(&rows)?)
            .with_context(|| format!("writing {}", path.display()))?,
        Some(None) => println!("{}", serde_json::to_string_pretty(&rows)?),
        None => {}
    }
    if args.markdown {
        print!("{}", super::suite::markdown(&rows));
    } else if !matches!(args.json, Some(None)) {
        print!("{}", super::suite::text(&rows));
    }
    Ok(())
}

/// The networks a suite run covers: `--network NAME`, `--imaging`, or the six benchmark networks.
fn suite_networks(args: &Args) -> anyhow::Result<Vec<&'static str>> {
    let known = || zoo::NAMES.iter().chain(&super::suite::IMAGING).copied();
    if args.imaging {
        let found = super::suite::imaging_available();
        if found.is_empty() {
            anyhow::bail!(
                "no imaging model in data/models: run `python3 scripts/make_imaging_models.py` \
                 (and scripts/convert_pneumonia.py for xception-pneumonia) first"
            );
        }
        return Ok(found);
    }
    match &args.network {
        Some(n) => Ok(vec![known().find(|x| x == n).with_context(|| {
            format!(
                "unknown network `{n}`; choose one of {}",
                known().collect::<Vec<_>>().join(", ")
            )
        })?]),
        None => Ok(zoo::NAMES.to_vec()),
    }
}

fn kb(b: u64) -> String {
    if b >= 1 << 20 {
        format!("{:.2} MB", b as f64 / 1e6)
    } else {
        format!("{:.1} KB", b as f64 / 1e3)
    }
}

fn print_table(r: &BenchResult) {
    println!(
        "{} ({} weights, {} records, batch 1, dealer and both parties in one process)\n",
        r.network, r.weights, r.inputs
    );
    println!(
        "{:<14} {:<36} {:>12} {:>7} {:>10}",
        "layer", "protocol", "online", "rounds", "ms"
    );
    for l in &r.layers {
        println!(
            "{:<14} {:<36} {:>12} {:>7} {:>10.3}",
            l.name,
            l.protocol,
            kb(l.bytes),
            l.rounds,
            l.seconds * 1e3
        );
    }
    println!();
    println!(
        "online per record    {} ({} provider->client, {} client->provider), {} rounds, {:.2} ms median",
        kb(r.online_bytes),
        kb(r.provider_to_client_bytes),
        kb(r.client_to_provider_bytes),
        r.online_rounds,
        r.online_seconds * 1e3
    );
    println!(
        "setup once/session   {} (masked weights); one-record session total {}",
        kb(r.setup_bytes),
        kb(r.one_record_total_bytes)
    );
    println!(
        "offline per record   {} from the dealer, {:.2} ms",
        kb(r.offline_bytes),
        r.offline_seconds * 1e3
    );
    println!(
        "accuracy             max |secure - f64| = {:.2e}, argmax agreement {:.3}",
        r.max_abs_error, r.argmax_agreement
    );
}
