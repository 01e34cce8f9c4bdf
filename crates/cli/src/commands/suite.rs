//! The benchmark suite (`cryptmed bench` without `--random-weights`): each
//! network runs between *separate* provider and client processes of this
//! binary over real loopback TCP, with a dealer process; the dealer's
//! material is produced before the online clock starts and reported apart.
//!
//! Profiles: `lan` is loopback as it is; `wan` relays the provider-client
//! link through a user-space relay that adds 20 ms each way and paces it to
//! 100 Mbit/s (the kernel here has no `netem`, so `tc` cannot shape traffic;
//! the relay works everywhere). The dealer links stay direct: they carry
//! only offline material.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use cryptmed_engine::{EngineConfig, Model, Report};
use cryptmed_model::{Network, reference, zoo};
use serde::Serialize;

/// Published figures beside ours, with their sources.
/// MiniONN: Liu et al., CCS 2017; Gazelle: Juvekar et al., USENIX Security 2018 (Tables 10-11);
/// Chameleon: Riazi et al., AsiaCCS 2018; as those papers report them (their hardware, LAN).
/// CrypTen 0.4.1: the figures given in this project's issue 2, measured on a machine of this kind.
const REFERENCES: &[(&str, &str, f64, f64)] = &[
    // (network, system, online+offline megabytes, seconds)
    ("secureml-mlp", "MiniONN", 15.8, 1.04),
    ("secureml-mlp", "Gazelle", 0.5, 0.09),
    ("chameleon-cnn", "Chameleon", 12.9, 2.7),
    ("chameleon-cnn", "Gazelle", 2.1, 0.29),
    ("minionn-mnist", "MiniONN", 657.5, 9.32),
    ("minionn-mnist", "Gazelle", 70.0, 0.81),
    ("minionn-cifar", "MiniONN", 9272.0, 544.0),
    ("minionn-cifar", "Gazelle", 1236.0, 12.9),
];

/// CrypTen 0.4.1 online megabytes and rounds, as given in issue 2.
const CRYPTEN: &[(&str, f64, u64)] = &[
    ("secureml-mlp", 2.02, 22),
    ("chameleon-cnn", 2.12, 22),
    ("minionn-mnist", 20.5, 124),
    ("minionn-cifar", 84.8, 72),
    ("medical-mlp", 0.11, 22),
];

/// One measured configuration (the `--json` list's element).
#[derive(Debug, Serialize, serde::Deserialize)]
pub(crate) struct Row {
    pub(crate) network: String,
    pub(crate) profile: String,
    pub(crate) batch: usize,
    weights: String,
    pub(crate) online_bytes: u64,
    provider_to_client_bytes: u64,
    client_to_provider_bytes: u64,
    online_rounds: u64,
    offline_bytes: u64,
    offline_seconds: f64,
    setup_bytes: u64,
    online_seconds_median: f64,
    online_seconds_min: f64,
    online_seconds_max: f64,
    records_per_second: f64,
    plaintext_accuracy: Option<f64>,
    secure_accuracy: Option<f64>,
    records: usize,
    pub(crate) lower_bound_bytes: u64,
    lower_bound_rounds: u64,
    pub(crate) crypten_online_bytes: Option<f64>,
    bytes_vs_crypten: Option<f64>,
    pub(crate) layers: Vec<LayerRow>,
}

/// One layer's cost in a [`Row`].
#[derive(Debug, Serialize, serde::Deserialize, Clone)]
pub(crate) struct LayerRow {
    pub(crate) name: String,
    protocol: String,
    pub(crate) bytes: u64,
    rounds: u64,
    pub(crate) seconds: f64,
}

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn wait_port(port: u16) -> anyhow::Result<()> {
    let t = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if t.elapsed() > Duration::from_secs(30) {
            bail!("port {port} did not open");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

fn exe() -> anyhow::Result<PathBuf> {
    std::env::current_exe().context("locating this binary")
}

/// What a network is benchmarked with.
struct Case {
    network: Network,
    serve: Vec<String>,
    weights: &'static str,
    records: Vec<Vec<f64>>,
    labels: Option<Vec<usize>>,
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn case(name: &'static str, limit: usize) -> anyhow::Result<Case> {
    let trained = match name {
        "medical-mlp" => Some((
            "models/breast-cancer-relu.onnx",
            "testdata/breast_cancer_test.csv",
        )),
        "secureml-mlp" | "chameleon-cnn" | "minionn-mnist" | "securenn-lenet" => {
            Some(("", "testdata/mnist_test_200.csv"))
        }
        _ => None,
    };
    let model_path = match (name, trained) {
        ("medical-mlp", Some((m, _))) => Some(root().join(m)),
        (_, Some(_)) => Some(root().join(format!("models/{name}.onnx"))),
        _ => None,
    };
    if let Some(mp) = model_path.filter(|p| p.is_file()) {
        let network = cryptmed_model::onnx::load(&mp)?;
        let data = root().join(trained.map(|t| t.1).unwrap_or_default());
        let r = super::load_records(&data, network.input_len(), true)?;
        let n = limit.min(r.records.len());
        return Ok(Case {
            serve: vec!["--model".into(), mp.display().to_string()],
            weights: "trained",
            records: r.records[..n].to_vec(),
            labels: r.labels.map(|l| l[..n].to_vec()),
            network,
        });
    }
    let network = zoo::build(name, 1).with_context(|| format!("unknown network {name}"))?;
    let records = zoo::random_inputs(&network, limit, 1);
    Ok(Case {
        serve: vec!["--zoo".into(), name.into()],
        weights: "random",
        records,
        labels: None,
        network,
    })
}

/// A relay that delays each direction by `delay` and paces it to `bits_per_second`.
fn start_relay(target: u16, delay: Duration, bits_per_second: f64) -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let Ok(up) = TcpStream::connect(("127.0.0.1", target)) else {
                continue;
            };
            let _ = (conn.set_nodelay(true), up.set_nodelay(true));
            for (from, to) in [
                (conn.try_clone(), up.try_clone()),
                (up.try_clone(), conn.try_clone()),
            ] {
                if let (Ok(from), Ok(to)) = (from, to) {
                    pipe(from, to, delay, bits_per_second);
                }
            }
        }
    });
    Ok(port)
}

fn pipe(mut from: TcpStream, mut to: TcpStream, delay: Duration, bps: f64) {
    let (tx, rx) = mpsc::channel::<(Instant, Vec<u8>)>();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 1 << 16];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx
                        .send((Instant::now() + delay, buf[..n].to_vec()))
                        .is_err()
                    {
                        break;
                    }
                }
            }
        }
    });
    std::thread::spawn(move || {
        let mut free = Instant::now();
        for (due, chunk) in rx {
            // Serialisation at the link rate, then the propagation delay.
            let start = free.max(due - delay);
            free = start + Duration::from_secs_f64(chunk.len() as f64 * 8.0 / bps);
            let deliver = (free + delay).max(due);
            let now = Instant::now();
            if deliver > now {
                std::thread::sleep(deliver - now);
            }
            if to.write_all(&chunk).is_err() {
                break;
            }
        }
        let _ = to.shutdown(std::net::Shutdown::Write);
    });
}

fn write_records(path: &Path, records: &[Vec<f64>]) -> anyhow::Result<()> {
    let mut s = String::new();
    for r in records {
        s.push_str(
            &r.iter()
                .map(|v| format!("{v}"))
                .collect::<Vec<_>>()
                .join(","),
        );
        s.push('\n');
    }
    std::fs::write(path, s).with_context(|| format!("writing {}", path.display()))
}

fn read_reports(path: &Path) -> anyhow::Result<Vec<Report>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    text.lines()
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_str(l).context("report line"))
        .collect()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    if v.is_empty() { 0.0 } else { v[v.len() / 2] }
}

/// Online bytes and rounds if every non-linear layer opened one masked ring
/// element per input from each party and linear layers were free.
fn lower_bound(model: &Model) -> (u64, u64) {
    use cryptmed_engine::StepKind;
    let mut bytes = 0;
    let mut rounds = 0;
    for s in &model.plan().steps {
        let inputs = model.plan().value_len[s.inputs[0]] as u64;
        if matches!(
            s.kind,
            StepKind::Relu { .. }
                | StepKind::LeakyRelu { .. }
                | StepKind::MaxPool { .. }
                | StepKind::Smooth { .. }
        ) {
            bytes += 16 * inputs;
            rounds += 1;
        }
    }
    (bytes, rounds)
}

/// Runs the suite; returns one row per network, profile and batch size.
pub(crate) fn run(
    networks: &[&'static str],
    profiles: &[&str],
    repeats: usize,
) -> anyhow::Result<Vec<Row>> {
    let work = std::env::temp_dir().join(format!("cryptmed-bench-{}", std::process::id()));
    std::fs::create_dir_all(&work)?;
    let mut rows = Vec::new();
    for name in networks {
        let c = case(name, (repeats.max(64)).max(1))?;
        let model = Model::compile(c.network.public(), EngineConfig::default())?;
        let (lb_bytes, lb_rounds) = lower_bound(&model);
        let (dp, pp) = (free_port()?, free_port()?);
        let _dealer = Proc(
            Command::new(exe()?)
                .args([
                    "dealer",
                    "--listen",
                    &format!("127.0.0.1:{dp}"),
                    "--insecure-plaintext",
                    "--timeout",
                    "600",
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()?,
        );
        let mut serve = vec![
            "serve".to_string(),
            "--listen".into(),
            format!("127.0.0.1:{pp}"),
            "--dealer".into(),
            format!("127.0.0.1:{dp}"),
            "--insecure-plaintext".into(),
            "--timeout".into(),
            "600".into(),
        ];
        serve.extend(c.serve.iter().cloned());
        let _provider = Proc(
            Command::new(exe()?)
                .args(&serve)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()?,
        );
        wait_port(dp)?;
        wait_port(pp)?;
        for profile in profiles {
            let port = match *profile {
                "wan" => start_relay(pp, Duration::from_millis(20), 100e6)?,
                _ => pp,
            };
            for batch in [1usize, 16, 64] {
                let n = if batch == 1 { repeats.max(1) } else { batch };
                let recs = &c.records[..n.min(c.records.len())];
                let input = work.join(format!("{name}-{profile}-{batch}.csv"));
                let report = work.join(format!("{name}-{profile}-{batch}.jsonl"));
                let out = work.join(format!("{name}-{profile}-{batch}.out"));
                let _ = std::fs::remove_file(&report);
                write_records(&input, recs)?;
                let status = Command::new(exe()?)
                    .args([
                        "diagnose",
                        "--server",
                        &format!("127.0.0.1:{port}"),
                        "--dealer",
                        &format!("127.0.0.1:{dp}"),
                        "--insecure-plaintext",
                        "--timeout",
                        "600",
                    ])
                    .args([
                        "--batch",
                        &batch.to_string(),
                        "--input",
                        input.to_str().unwrap_or_default(),
                        "--output",
                        out.to_str().unwrap_or_default(),
                    ])
                    .args(["--report", report.to_str().unwrap_or_default()])
                    .stderr(Stdio::null())
                    .status()?;
                if !status.success() {
                    bail!("{name}, {profile}, batch {batch}: the client failed ({status})");
                }
                let reports = read_reports(&report)?;
                let first = reports.first().context("no report")?;
                let times: Vec<f64> = reports.iter().map(|r| r.online_seconds).collect();
                let total_time: f64 = times.iter().sum();
                let labels: Vec<usize> = std::fs::read_to_string(&out)?
                    .lines()
                    .skip(1)
                    .filter_map(|l| l.split(',').nth(1)?.parse().ok())
                    .collect();
                let (plain, secure) = match &c.labels {
                    Some(truth) if batch == 1 => {
                        let k = labels.len();
                        let plain = recs
                            .iter()
                            .zip(truth)
                            .filter(|(x, t)| {
                                super::argmax(&reference::evaluate(&c.network, x)) == **t
                            })
                            .count();
                        let sec = labels.iter().zip(truth).filter(|(a, b)| a == b).count();
                        (Some(plain as f64 / k as f64), Some(sec as f64 / k as f64))
                    }
                    _ => (None, None),
                };
                let crypten = CRYPTEN.iter().find(|c| c.0 == *name).map(|c| c.1 * 1e6);
                let online = first.online_bytes_sent + first.online_bytes_recv;
                rows.push(Row {
                    network: name.to_string(),
                    profile: profile.to_string(),
                    batch,
                    weights: c.weights.to_string(),
                    online_bytes: online,
                    provider_to_client_bytes: first.online_bytes_recv,
                    client_to_provider_bytes: first.online_bytes_sent,
                    online_rounds: first.online_rounds,
                    offline_bytes: first.offline_bytes + 48 + 128 / reports.len().max(1) as u64,
                    offline_seconds: median(reports.iter().map(|r| r.offline_seconds).collect()),
                    setup_bytes: first.setup_bytes,
                    online_seconds_median: median(times.clone()),
                    online_seconds_min: times.iter().cloned().fold(f64::MAX, f64::min),
                    online_seconds_max: times.iter().cloned().fold(0.0, f64::max),
                    records_per_second: labels.len() as f64 / total_time.max(1e-9),
                    plaintext_accuracy: plain,
                    secure_accuracy: secure,
                    records: labels.len(),
                    lower_bound_bytes: lb_bytes * batch as u64,
                    lower_bound_rounds: lb_rounds,
                    crypten_online_bytes: crypten.filter(|_| batch == 1),
                    bytes_vs_crypten: crypten.filter(|_| batch == 1).map(|c| c / online as f64),
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
                });
                eprintln!(
                    "{name:>15} {profile} batch {batch:>2}: {} bytes, {} rounds, median {:.2} ms, {:.1} records/s",
                    online,
                    first.online_rounds,
                    median(times) * 1e3,
                    labels.len() as f64 / total_time.max(1e-9)
                );
            }
        }
    }
    let _ = std::fs::remove_dir_all(&work);
    Ok(rows)
}

fn mb(b: f64) -> String {
    if b >= 1e6 {
        format!("{:.2} MB", b / 1e6)
    } else {
        format!("{:.1} KB", b / 1e3)
    }
}

/// The results as Markdown tables (the README's results section is pasted from this).
pub(crate) fn markdown(rows: &[Row]) -> String {
    let mut s = String::new();
    for profile in ["lan", "wan"] {
        let rs: Vec<&Row> = rows.iter().filter(|r| r.profile == profile).collect();
        if rs.is_empty() {
            continue;
        }
        s.push_str(&format!(
            "\n**{} profile** ({}): batch 1 latency, throughput at batch 16 and 64\n\n",
            profile.to_uppercase(),
            if profile == "lan" {
                "loopback"
            } else {
                "40 ms round trip, 100 Mbit/s"
            }
        ));
        s.push_str("| network | weights | online bytes | rounds | lower bound | vs CrypTen bytes | dealer bytes | setup | latency median (min-max) | rec/s b16 | rec/s b64 | plaintext acc. | secure acc. |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
        for r in rs.iter().filter(|r| r.batch == 1) {
            let tp = |b: usize| {
                rs.iter()
                    .find(|x| x.network == r.network && x.batch == b)
                    .map_or("—".into(), |x| format!("{:.1}", x.records_per_second))
            };
            let acc =
                |a: Option<f64>| a.map_or("—".into(), |v| format!("{v:.3} ({})", r.records));
            s.push_str(&format!(
                "| {} | {} | {} | {} | {} / {} | {} | {} | {} | {:.1} ms ({:.1}-{:.1}) | {} | {} | {} | {} |\n",
                r.network, r.weights, mb(r.online_bytes as f64), r.online_rounds, mb(r.lower_bound_bytes as f64), r.lower_bound_rounds,
                r.bytes_vs_crypten.map_or("—".into(), |x| format!("{x:.0}x fewer")), mb(r.offline_bytes as f64), mb(r.setup_bytes as f64),
                r.online_seconds_median * 1e3, r.online_seconds_min * 1e3, r.online_seconds_max * 1e3, tp(16), tp(64), acc(r.plaintext_accuracy), acc(r.secure_accuracy)
            ));
        }
    }
    s.push_str("\nPublished figures (their hardware; total traffic incl. offline, and latency):\n\n| network | system | MB | seconds | our online bytes as a fraction |\n|---|---|---|---|---|\n");
    for (net, sys, mbytes, secs) in REFERENCES {
        if let Some(r) = rows
            .iter()
            .find(|r| r.network == *net && r.batch == 1 && r.profile == "lan")
        {
            s.push_str(&format!(
                "| {net} | {sys} | {mbytes} | {secs} | 1/{:.0} |\n",
                mbytes * 1e6 / r.online_bytes as f64
            ));
        }
    }
    s
}
