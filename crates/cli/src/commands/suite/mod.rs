//! The benchmark suite (`cryptmed bench` without `--random-weights`): each
//! network runs between *separate* dealer, provider and client processes of
//! this binary over real TCP; the dealer's material is produced before the
//! online clock starts and is reported apart.
//!
//! Profiles: `lan` is loopback as it is; `wan` is 40 ms round trip and
//! 100 Mbit/s between provider and client (see [`wan`] for how it is applied).
//! Batch sizes 1 (latency), 16 and 64 (throughput). Beside our figures: the
//! lower bound of any dealer-assisted protocol, CrypTen 0.4.1 (measured in the
//! same run when `--crypten PYTHON` is given) and published prior work.

mod imaging;
mod plots;
mod references;
mod render;
mod wan;

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use cryptmed_engine::{ComparisonKind, EngineConfig, Model, Report, StepKind};
use cryptmed_model::{Network, reference, zoo};
use serde::{Deserialize, Serialize};

pub(crate) use imaging::{NAMES as IMAGING, available as imaging_available};
pub(crate) use plots::write as write_plots;
pub(crate) use references::Crypten;
pub(crate) use render::{markdown, text};

/// Batch sizes every network runs at.
pub(crate) const BATCHES: [usize; 3] = [1, 16, 64];

/// What the suite runs.
pub(crate) struct Options {
    /// Benchmark networks, by zoo name.
    pub(crate) networks: Vec<&'static str>,
    /// `lan`, `wan` or both.
    pub(crate) profiles: Vec<&'static str>,
    /// Batches of one record per network and profile (latency samples).
    pub(crate) repeats: usize,
    /// Batches of 16 and of 64 per network and profile (throughput samples;
    /// 0 runs batch 1 only).
    pub(crate) batch_repeats: usize,
    /// The comparison backend the provider serves with (`auto`: chosen per
    /// network for `link`).
    pub(crate) comparison: super::ComparisonArg,
    /// The link `auto` predicts for.
    pub(crate) link: cryptmed_engine::Link,
    /// A Python with CrypTen 0.4.1, to measure it side by side.
    pub(crate) crypten: Option<PathBuf>,
    /// Where the rows so far are written after each network (the `--json`
    /// file), so that a run cut short keeps what it measured.
    pub(crate) checkpoint: Option<PathBuf>,
}

/// One measured configuration (an element of the `--json` list).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Row {
    /// Benchmark network.
    pub(crate) network: String,
    /// `lan` or `wan`.
    pub(crate) profile: String,
    /// Records per batch.
    pub(crate) batch: usize,
    /// The comparison backend (`ppa` or `fss`).
    #[serde(default = "ppa")]
    pub(crate) comparison: String,
    /// `trained` (a committed ONNX model) or `random` (seeded weights, cost only).
    pub(crate) weights: String,
    /// How the link was shaped: for `wan` rows `netem`, or the relay and why;
    /// for `switched` rows the relay and the round trip measured through it.
    pub(crate) wan_shaping: Option<String>,
    /// Records run in this configuration.
    pub(crate) records: usize,
    /// Online bytes per record, both directions between provider and client.
    pub(crate) online_bytes: u64,
    /// Online bytes per record, provider to client.
    pub(crate) provider_to_client_bytes: u64,
    /// Online bytes per record, client to provider.
    pub(crate) client_to_provider_bytes: u64,
    /// Online rounds per batch (a batch shares its rounds).
    pub(crate) online_rounds: u64,
    /// Dealer bytes per record.
    pub(crate) offline_bytes: u64,
    /// Median dealer time per batch, seconds.
    pub(crate) offline_seconds: f64,
    /// Bytes sent once per session (the masked weights).
    pub(crate) setup_bytes: u64,
    /// Median online latency of a batch, seconds.
    pub(crate) online_seconds_median: f64,
    /// Fastest batch, seconds.
    pub(crate) online_seconds_min: f64,
    /// Slowest batch, seconds.
    pub(crate) online_seconds_max: f64,
    /// Median wall time of a batch, dealer material included, seconds
    /// (0 in results recorded before it was measured).
    #[serde(default)]
    pub(crate) session_seconds_median: f64,
    /// Records per second of session time (dealer material included).
    pub(crate) records_per_second: f64,
    /// Plaintext (f64) accuracy on the labelled records, when there are labels.
    pub(crate) plaintext_accuracy: Option<f64>,
    /// Secure accuracy on the same records.
    pub(crate) secure_accuracy: Option<f64>,
    /// How many labelled records the accuracies are over.
    pub(crate) accuracy_records: usize,
    /// Online bytes per record of the cheapest known dealer-assisted approach.
    pub(crate) lower_bound_bytes: u64,
    /// Its rounds.
    pub(crate) lower_bound_rounds: u64,
    /// CrypTen 0.4.1 on the same network (batch-1 LAN rows).
    pub(crate) crypten: Option<Crypten>,
    /// CrypTen's online bytes over ours.
    pub(crate) bytes_vs_crypten: Option<f64>,
    /// CrypTen's median latency over ours, when measured in this run.
    pub(crate) seconds_vs_crypten: Option<f64>,
    /// Published prior work on this network (batch-1 LAN rows).
    pub(crate) references: Vec<Reference>,
    /// Per plan step, for one batch.
    pub(crate) layers: Vec<LayerRow>,
    /// The machine it ran on (CPU model, cores, kernel).
    #[serde(default)]
    pub(crate) machine: String,
    /// Peak resident memory of each role (imaging networks).
    #[serde(default)]
    pub(crate) peak_rss: Option<imaging::PeakRss>,
}

fn ppa() -> String {
    "ppa".into()
}

/// One layer's cost in a [`Row`] (one batch).
#[derive(Debug, Serialize, Deserialize, Clone)]
pub(crate) struct LayerRow {
    /// Plan step.
    pub(crate) name: String,
    /// Protocol that runs it.
    pub(crate) protocol: String,
    /// Online bytes, both directions.
    pub(crate) bytes: u64,
    /// Rounds.
    pub(crate) rounds: u64,
    /// Seconds (the client's view).
    pub(crate) seconds: f64,
}

/// A published figure beside ours.
#[derive(Debug, Serialize, Deserialize, Clone)]
pub(crate) struct Reference {
    /// The system.
    pub(crate) system: String,
    /// Where the figure comes from.
    pub(crate) source: String,
    /// Its total traffic, megabytes.
    pub(crate) megabytes: f64,
    /// Its latency, seconds.
    pub(crate) seconds: f64,
    /// Its traffic over ours all told for a one-record session (online, dealer
    /// and the once-per-session setup).
    pub(crate) bytes_ratio_one_record: f64,
    /// Its traffic over ours per record in a long session (online and dealer;
    /// the setup amortised away).
    pub(crate) bytes_ratio_long_session: f64,
    /// Its latency over ours.
    pub(crate) seconds_ratio: f64,
}

/// A child process killed on drop.
struct Proc(Child);

impl Proc {
    /// Its peak resident memory so far.
    fn peak_rss(&self) -> Option<u64> {
        super::peak_rss(Some(self.0.id()))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn wait_port(addr: &str) -> anyhow::Result<()> {
    let t = Instant::now();
    while TcpStream::connect(addr).is_err() {
        if t.elapsed() > Duration::from_secs(30) {
            bail!("{addr} did not open within 30 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

fn exe() -> anyhow::Result<PathBuf> {
    std::env::current_exe().context("locating this binary")
}

/// The repository root (models and test subsets).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// What a network is benchmarked with.
struct Case {
    network: Network,
    /// `serve` arguments that load it.
    serve: Vec<String>,
    weights: &'static str,
    records: Vec<Vec<f64>>,
    labels: Option<Vec<usize>>,
}

/// The trained model and labelled test subset of a benchmark network, when committed.
fn trained(name: &str) -> Option<(PathBuf, PathBuf)> {
    let (model, data) = match name {
        "medical-mlp" => (
            "models/breast-cancer-relu.onnx",
            "testdata/breast_cancer_test.csv",
        ),
        "secureml-mlp" | "chameleon-cnn" | "minionn-mnist" | "securenn-lenet" => {
            (name, "testdata/mnist_test_200.csv")
        }
        _ => return None,
    };
    let model = if model.ends_with(".onnx") {
        root().join(model)
    } else {
        root().join(format!("models/{model}.onnx"))
    };
    Some((model, root().join(data))).filter(|(m, d)| m.is_file() && d.is_file())
}

fn case(name: &'static str) -> anyhow::Result<Case> {
    if imaging::is_imaging(name) {
        return imaging::case(name);
    }
    if let Some((model, data)) = trained(name) {
        let network = cryptmed_model::onnx::load(&model)?;
        let r = super::load_records(&data, &network, true)?;
        return Ok(Case {
            serve: vec!["--model".into(), model.display().to_string()],
            weights: "trained",
            records: r.records,
            labels: r.labels,
            network,
        });
    }
    let network = zoo::build(name, 1).with_context(|| format!("unknown network {name}"))?;
    Ok(Case {
        records: zoo::random_inputs(&network, 64, 1),
        serve: vec!["--zoo".into(), name.into()],
        weights: "random",
        labels: None,
        network,
    })
}

/// Online bytes and rounds per record if every non-linear step opened one
/// masked ring element per input from each party (16 bytes, one round) and
/// linear steps were free; the label-only output counts as one more such
/// step over the logits.
fn lower_bound(model: &Model) -> (u64, u64) {
    let plan = model.plan();
    let (mut bytes, mut rounds) = (0, 0);
    for s in &plan.steps {
        if matches!(
            s.kind,
            StepKind::Relu { .. } | StepKind::MaxPool { .. } | StepKind::Smooth { .. }
        ) {
            bytes += 16 * plan.value_len[s.inputs[0]] as u64;
            rounds += 1;
        }
    }
    (bytes + 16 * plan.output.classes as u64, rounds + 1)
}

/// A dealer and a provider serving one network.
struct Deployment {
    dealer_proc: Proc,
    provider_proc: Proc,
    /// Where clients reach the provider.
    server: String,
    /// Where clients reach the dealer.
    dealer: String,
}

/// Starts a dealer and a provider; inside `ns` (the provider behind netem) when given.
fn deploy(
    case: &Case,
    ns: Option<&wan::Netns>,
    comparison: ComparisonKind,
) -> anyhow::Result<Deployment> {
    let (dp, pp) = (free_port()?, free_port()?);
    let (dealer_ip, provider_ip) =
        ns.map_or(("127.0.0.1", "127.0.0.1"), |n| (n.host_ip, n.inner_ip));
    let (dealer, server) = (format!("{dealer_ip}:{dp}"), format!("{provider_ip}:{pp}"));
    let quiet = |c: &mut Command| {
        c.stdout(Stdio::null()).stderr(Stdio::null());
    };
    let mut d = Command::new(exe()?);
    d.args(["dealer", "--listen", &dealer, "--insecure-plaintext"])
        .args(["--timeout", "600"]);
    quiet(&mut d);
    let dealer_proc = Proc(d.spawn().context("starting the dealer")?);
    let mut p = match ns {
        Some(n) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", &n.name]).arg(exe()?);
            c
        }
        None => Command::new(exe()?),
    };
    p.args(["serve", "--listen", &server, "--dealer", &dealer])
        .args(["--insecure-plaintext", "--timeout", "600"])
        .args(&case.serve)
        .args(["--comparison", comparison.name()]);
    quiet(&mut p);
    let provider_proc = Proc(p.spawn().context("starting the provider")?);
    wait_port(&dealer)?;
    wait_port(&server)?;
    Ok(Deployment {
        dealer_proc,
        provider_proc,
        server,
        dealer,
    })
}

fn write_records(path: &Path, records: &[Vec<f64>]) -> anyhow::Result<()> {
    let mut s = String::new();
    for r in records {
        let cells: Vec<String> = r.iter().map(|v| v.to_string()).collect();
        s.push_str(&cells.join(","));
        s.push('\n');
    }
    std::fs::write(path, s).with_context(|| format!("writing {}", path.display()))
}

/// What one `diagnose` run gave: a report per batch, a label per record and
/// the client process's peak memory.
struct Run {
    reports: Vec<Report>,
    labels: Vec<usize>,
    peak_rss: Option<u64>,
}

/// Runs `records` through a `diagnose` client process in batches of `batch`.
fn diagnose(
    server: &str,
    dealer: &str,
    records: &[Vec<f64>],
    batch: usize,
    work: &Path,
) -> anyhow::Result<Run> {
    let input = work.join("records.csv");
    let report = work.join("reports.jsonl");
    let out = work.join("results.csv");
    for f in [&report, &out] {
        let _ = std::fs::remove_file(f);
    }
    write_records(&input, records)?;
    let path = |p: &Path| p.display().to_string();
    let status = Command::new(exe()?)
        .args(["diagnose", "--server", server, "--dealer", dealer])
        .args(["--insecure-plaintext", "--timeout", "600"])
        .args(["--batch", &batch.to_string()])
        // The records are written in the model's column order, without a header.
        .args(["--input", &path(&input), "--no-header"])
        .args(["--output", &path(&out), "--report", &path(&report)])
        .stderr(Stdio::null())
        .status()
        .context("starting the client")?;
    if !status.success() {
        bail!("the client failed ({status})");
    }
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&report)
        .with_context(|| format!("reading {}", report.display()))?
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_str(l).context("a report line"))
        .collect::<anyhow::Result<_>>()?;
    let peak_rss = lines
        .iter()
        .filter_map(|l| l["peak_rss_bytes"].as_u64())
        .max();
    let reports = lines
        .into_iter()
        .map(|l| serde_json::from_value(l).context("a report line"))
        .collect::<anyhow::Result<Vec<Report>>>()?;
    // Results: the run's comment line, the header, then one line per record.
    let labels = std::fs::read_to_string(&out)?
        .lines()
        .filter(|l| !l.starts_with('#'))
        .skip(1)
        .map(|l| {
            l.split(',')
                .nth(1)
                .and_then(|v| v.parse().ok())
                .with_context(|| format!("a result line: {l}"))
        })
        .collect::<anyhow::Result<Vec<usize>>>()?;
    if reports.is_empty() || labels.len() != records.len() {
        bail!(
            "the client returned {} results and {} reports for {} records",
            labels.len(),
            reports.len(),
            records.len()
        );
    }
    Ok(Run {
        reports,
        labels,
        peak_rss,
    })
}

/// CPU model, logical cores and kernel of this machine.
fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!("{cpu}, {cores} cores, Linux {}", kernel.trim())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    if v.is_empty() { 0.0 } else { v[v.len() / 2] }
}

/// Plaintext and secure accuracy over the labelled records among the first `labels.len()`.
fn accuracy(case: &Case, labels: &[usize]) -> (Option<f64>, Option<f64>, usize) {
    let Some(truth) = &case.labels else {
        return (None, None, 0);
    };
    let n = truth.len().min(labels.len());
    if n == 0 {
        return (None, None, 0);
    }
    let plain = (0..n)
        .filter(|&i| reference::classify(&case.network, &case.records[i]) == truth[i])
        .count();
    let secure = (0..n).filter(|&i| labels[i] == truth[i]).count();
    (
        Some(plain as f64 / n as f64),
        Some(secure as f64 / n as f64),
        n,
    )
}

/// Builds a row from one run.
fn row(name: &str, profile: &str, batch: usize, case: &Case, run: &Run, bound: (u64, u64)) -> Row {
    let records = run.labels.len();
    let per_record = |v: u64| v / records.max(1) as u64;
    let sum = |f: fn(&Report) -> u64| run.reports.iter().map(f).sum::<u64>();
    let times: Vec<f64> = run.reports.iter().map(|r| r.online_seconds).collect();
    let sessions: Vec<f64> = run.reports.iter().map(|r| r.session_seconds).collect();
    let first = &run.reports[0];
    Row {
        network: name.into(),
        profile: profile.into(),
        batch,
        comparison: ppa(),
        weights: case.weights.into(),
        wan_shaping: None,
        records,
        online_bytes: per_record(sum(|r| r.online_bytes_sent + r.online_bytes_recv)),
        provider_to_client_bytes: per_record(sum(|r| r.online_bytes_recv)),
        client_to_provider_bytes: per_record(sum(|r| r.online_bytes_sent)),
        online_rounds: first.online_rounds,
        offline_bytes: per_record(sum(|r| r.offline_bytes)),
        offline_seconds: median(run.reports.iter().map(|r| r.offline_seconds).collect()),
        setup_bytes: first.setup_bytes,
        online_seconds_median: median(times.clone()),
        online_seconds_min: times.iter().copied().fold(f64::INFINITY, f64::min),
        online_seconds_max: times.iter().copied().fold(0.0, f64::max),
        session_seconds_median: median(sessions.clone()),
        records_per_second: records as f64 / sessions.iter().sum::<f64>().max(1e-9),
        plaintext_accuracy: None,
        secure_accuracy: None,
        accuracy_records: 0,
        lower_bound_bytes: bound.0,
        lower_bound_rounds: bound.1,
        crypten: None,
        bytes_vs_crypten: None,
        seconds_vs_crypten: None,
        references: Vec::new(),
        machine: machine(),
        peak_rss: None,
        layers: first
            .layers
            .iter()
            .map(|l| LayerRow {
                name: l.name.clone(),
                protocol: l.protocol.clone(),
                bytes: l.bytes_sent + l.bytes_recv,
                rounds: l.rounds,
                seconds: l.seconds,
            })
            .collect(),
    }
}

/// A relay of `shape` in front of the provider at `server` (`host:port`);
/// the address the client connects to instead.
fn relay_to(server: &str, shape: wan::Shape) -> anyhow::Result<String> {
    let port: u16 = server.rsplit(':').next().unwrap_or("0").parse()?;
    Ok(format!("127.0.0.1:{}", wan::start_relay(port, shape)?))
}

/// Where the WAN profile's client connects, and how it is shaped.
enum WanLink {
    Netem(wan::Netns),
    Relay(String),
}

/// Runs the suite; returns one row per network, profile and batch size.
pub(crate) fn run(opts: &Options) -> anyhow::Result<Vec<Row>> {
    let work = std::env::temp_dir().join(format!("cryptmed-bench-{}", std::process::id()));
    std::fs::create_dir_all(&work)?;
    let link = if opts.profiles.contains(&"wan") {
        Some(match wan::Netns::create() {
            Ok(ns) => WanLink::Netem(ns),
            Err(why) => {
                let why = format!("user-space relay; netem not used: {why}");
                eprintln!("WAN profile: {why}");
                WanLink::Relay(why)
            }
        })
    } else {
        None
    };
    let result = run_in(opts, &work, link.as_ref());
    let _ = std::fs::remove_dir_all(&work);
    result
}

fn run_in(opts: &Options, work: &Path, link: Option<&WanLink>) -> anyhow::Result<Vec<Row>> {
    let mut rows = Vec::new();
    for &name in &opts.networks {
        let c = case(name)?;
        let model = Model::compile(c.network.public(), EngineConfig::default())?;
        let bound = lower_bound(&model);
        let comparison = match opts.comparison {
            super::ComparisonArg::Ppa => ComparisonKind::Ppa,
            super::ComparisonArg::Fss => ComparisonKind::Fss,
            super::ComparisonArg::Auto => ComparisonKind::choose(&model, opts.link),
        };
        let lan = deploy(&c, None, comparison)?;
        let imaging = imaging::is_imaging(name);
        // Imaging networks run at batch 1 on the LAN (the setting).
        let (batches, profiles): (&[usize], &[&str]) = if imaging {
            (&imaging::BATCHES, &["lan"])
        } else {
            (&BATCHES, &opts.profiles)
        };
        let mut client_peak = 0u64;
        let mut net_rows = Vec::new();
        for &profile in profiles {
            let (wan_deployment, shaping);
            let (server, dealer) = match (profile, link) {
                ("wan", Some(WanLink::Netem(ns))) => {
                    wan_deployment = deploy(&c, Some(ns), comparison)?;
                    shaping = Some("netem".to_string());
                    (wan_deployment.server.clone(), wan_deployment.dealer.clone())
                }
                ("wan", Some(WanLink::Relay(why))) => {
                    shaping = Some(why.clone());
                    (relay_to(&lan.server, wan::WAN)?, lan.dealer.clone())
                }
                ("switched", _) => {
                    let rtt = wan::measured_round_trip(wan::SWITCHED)?;
                    shaping = Some(format!(
                        "user-space relay, {:.2} ms round trip measured through it",
                        rtt.as_secs_f64() * 1e3
                    ));
                    (relay_to(&lan.server, wan::SWITCHED)?, lan.dealer.clone())
                }
                _ => {
                    shaping = None;
                    (lan.server.clone(), lan.dealer.clone())
                }
            };
            for &batch in batches {
                let mut repeats = if batch == 1 {
                    opts.repeats.max(1)
                } else {
                    opts.batch_repeats
                };
                if repeats == 0 {
                    continue;
                }
                // The largest LAN batch also measures accuracy over every labelled record.
                let measure_accuracy = profile == "lan" && Some(&batch) == batches.last();
                if measure_accuracy && c.labels.is_some() {
                    repeats = repeats.max(c.records.len().div_ceil(batch));
                }
                let records: Vec<Vec<f64>> = (0..batch * repeats)
                    .map(|i| c.records[i % c.records.len()].clone())
                    .collect();
                let run = diagnose(&server, &dealer, &records, batch, work)
                    .with_context(|| format!("{name}, {profile}, batch {batch}"))?;
                client_peak = client_peak.max(run.peak_rss.unwrap_or(0));
                let mut r = row(name, profile, batch, &c, &run, bound);
                r.comparison = comparison.name().into();
                r.wan_shaping = shaping.clone();
                if measure_accuracy {
                    let (p, s, n) = accuracy(&c, &run.labels);
                    for x in net_rows.iter_mut().chain(std::iter::once(&mut r)) {
                        let x: &mut Row = x;
                        (x.plaintext_accuracy, x.secure_accuracy, x.accuracy_records) = (p, s, n);
                    }
                }
                eprintln!(
                    "{name:>15} {} {profile} batch {batch:>2}: {} bytes/record, {} rounds, median {:.2} ms, {:.1} records/s",
                    r.comparison,
                    r.online_bytes,
                    r.online_rounds,
                    r.online_seconds_median * 1e3,
                    r.records_per_second
                );
                net_rows.push(r);
            }
        }
        // Accuracy measured on LAN applies to every row of the network.
        if let Some(acc) = net_rows.iter().find(|r| r.accuracy_records > 0).cloned() {
            for r in &mut net_rows {
                (r.plaintext_accuracy, r.secure_accuracy, r.accuracy_records) = (
                    acc.plaintext_accuracy,
                    acc.secure_accuracy,
                    acc.accuracy_records,
                );
            }
        }
        if imaging {
            let peak = imaging::PeakRss {
                dealer: lan.dealer_proc.peak_rss().unwrap_or(0),
                provider: lan.provider_proc.peak_rss().unwrap_or(0),
                client: client_peak,
            };
            net_rows.iter_mut().for_each(|r| r.peak_rss = Some(peak));
        }
        drop(lan);
        compare(name, &mut net_rows, opts)?;
        rows.extend(net_rows);
        if let Some(path) = &opts.checkpoint {
            std::fs::write(path, serde_json::to_string_pretty(&rows)?)
                .with_context(|| format!("writing {}", path.display()))?;
        }
    }
    Ok(rows)
}

/// Fills the batch-1 LAN row's comparisons with CrypTen and published work.
fn compare(name: &str, rows: &mut [Row], opts: &Options) -> anyhow::Result<()> {
    let Some(r) = rows.iter_mut().find(|r| r.profile == "lan" && r.batch == 1) else {
        return Ok(());
    };
    let crypten = match &opts.crypten {
        Some(python) => {
            let script = root().join("python/crypten_bench.py");
            eprintln!("{name:>15} CrypTen 0.4.1 ({})", python.display());
            Some(references::crypten_measure(
                python,
                &script,
                name,
                opts.repeats,
            )?)
        }
        None => references::crypten_given(name),
    };
    if let Some(c) = &crypten {
        r.bytes_vs_crypten = Some(c.online_bytes as f64 / r.online_bytes.max(1) as f64);
        r.seconds_vs_crypten = c
            .online_seconds_median
            .map(|s| s / r.online_seconds_median.max(1e-9));
    }
    r.crypten = crypten;
    let long = (r.online_bytes + r.offline_bytes) as f64;
    let one = long + r.setup_bytes as f64;
    r.references = references::PUBLISHED
        .iter()
        .filter(|p| p.network == name)
        .map(|p| Reference {
            system: p.system.into(),
            source: p.source.into(),
            megabytes: p.megabytes,
            seconds: p.seconds,
            bytes_ratio_one_record: p.megabytes * 1e6 / one.max(1.0),
            bytes_ratio_long_session: p.megabytes * 1e6 / long.max(1.0),
            seconds_ratio: p.seconds / r.online_seconds_median.max(1e-9),
        })
        .collect();
    Ok(())
}
