//! Other systems' figures beside ours: published numbers (with their sources)
//! and CrypTen 0.4.1, measured in the same run by `python/crypten_bench.py`
//! when the suite is given a Python that has it (`--crypten PYTHON`).

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

/// A published result for one benchmark network (their hardware, LAN, batch 1).
pub(crate) struct Published {
    /// Our name of the network.
    pub(crate) network: &'static str,
    /// The system.
    pub(crate) system: &'static str,
    /// Where the figure comes from.
    pub(crate) source: &'static str,
    /// Total traffic in megabytes (offline and online, as the paper reports it).
    pub(crate) megabytes: f64,
    /// Total latency in seconds.
    pub(crate) seconds: f64,
}

const MINIONN: &str =
    "Liu et al., MiniONN, ACM CCS 2017 (offline + online, as the paper reports them)";
const GAZELLE: &str = "Juvekar et al., Gazelle, USENIX Security 2018, MNIST and CIFAR-10 comparison tables (offline + online)";
const CHAMELEON: &str = "Riazi et al., Chameleon, ACM AsiaCCS 2018, as compared in Gazelle's MNIST table (offline + online)";

/// The published figures of prior systems on our benchmark networks.
pub(crate) const PUBLISHED: &[Published] = &[
    Published {
        network: "secureml-mlp",
        system: "MiniONN",
        source: MINIONN,
        megabytes: 15.8,
        seconds: 1.04,
    },
    Published {
        network: "secureml-mlp",
        system: "Gazelle",
        source: GAZELLE,
        megabytes: 0.5,
        seconds: 0.09,
    },
    Published {
        network: "chameleon-cnn",
        system: "Chameleon",
        source: CHAMELEON,
        megabytes: 12.9,
        seconds: 2.7,
    },
    Published {
        network: "chameleon-cnn",
        system: "Gazelle",
        source: GAZELLE,
        megabytes: 2.1,
        seconds: 0.29,
    },
    Published {
        network: "minionn-mnist",
        system: "MiniONN",
        source: MINIONN,
        megabytes: 657.5,
        seconds: 9.32,
    },
    Published {
        network: "minionn-mnist",
        system: "Gazelle",
        source: GAZELLE,
        megabytes: 70.0,
        seconds: 0.81,
    },
    Published {
        network: "minionn-cifar",
        system: "MiniONN",
        source: MINIONN,
        megabytes: 9272.0,
        seconds: 544.0,
    },
    Published {
        network: "minionn-cifar",
        system: "Gazelle",
        source: GAZELLE,
        megabytes: 1236.0,
        seconds: 12.9,
    },
];

/// CryptMed's own claim, which the suite's ratios are read against.
pub(crate) const CRYPTMED_CLAIM: &str = "CryptMed (ePrint 2022/899) claims up to 413x, 19x and 43x less \
     bandwidth than prior art on MNIST, CIFAR-10 and medical models, with under 1.2% accuracy loss";

/// CrypTen 0.4.1 online figures as issue 2 gives them (measured on a machine
/// of this kind), used when CrypTen is not measured in the same run.
const CRYPTEN_GIVEN: &[(&str, u64, u64)] = &[
    ("secureml-mlp", 2_020_000, 22),
    ("chameleon-cnn", 2_120_000, 22),
    ("minionn-mnist", 20_500_000, 124),
    ("minionn-cifar", 84_800_000, 72),
    ("medical-mlp", 110_000, 22),
];

/// CrypTen's online figures for one network.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Crypten {
    /// `measured` (this run, this machine) or `issue-2` (given figures, no time).
    pub(crate) source: String,
    /// Bytes between the two parties, both directions.
    pub(crate) online_bytes: u64,
    /// CrypTen's own round count.
    pub(crate) online_rounds: u64,
    /// Median online latency at batch 1, when measured.
    pub(crate) online_seconds_median: Option<f64>,
}

/// The figures given in issue 2, when there are any for `network`.
pub(crate) fn crypten_given(network: &str) -> Option<Crypten> {
    CRYPTEN_GIVEN
        .iter()
        .find(|c| c.0 == network)
        .map(|&(_, online_bytes, online_rounds)| Crypten {
            source: "issue-2".into(),
            online_bytes,
            online_rounds,
            online_seconds_median: None,
        })
}

/// How long one CrypTen measurement may take before it is abandoned.
const CRYPTEN_TIMEOUT: Duration = Duration::from_secs(600);
/// Attempts per network: CrypTen 0.4.1's two-process launcher now and then
/// hangs at start-up (one party exits, the other waits for it forever).
const CRYPTEN_ATTEMPTS: usize = 3;

/// Runs `script` (python/crypten_bench.py) with `python` on one network,
/// with a timeout per attempt and a fresh attempt after a hang or a crash.
pub(crate) fn crypten_measure(
    python: &Path,
    script: &Path,
    network: &str,
    repeats: usize,
) -> anyhow::Result<Crypten> {
    let mut failures = Vec::new();
    for attempt in 1..=CRYPTEN_ATTEMPTS {
        match crypten_once(python, script, network, repeats) {
            Ok(c) => return Ok(c),
            Err(e) => {
                eprintln!(
                    "{network:>15} CrypTen attempt {attempt} of {CRYPTEN_ATTEMPTS} failed: {e:#}"
                );
                failures.push(format!("attempt {attempt}: {e:#}"));
            }
        }
    }
    bail!(
        "CrypTen on {network} failed {CRYPTEN_ATTEMPTS} times: {}",
        failures.join("; ")
    )
}

/// One CrypTen run: its result line, or why there is none.
fn crypten_once(
    python: &Path,
    script: &Path,
    network: &str,
    repeats: usize,
) -> anyhow::Result<Crypten> {
    #[derive(Deserialize)]
    struct Line {
        online_bytes: u64,
        online_rounds: u64,
        online_seconds_median: f64,
    }
    let dir = std::env::temp_dir().join(format!("cryptmed-crypten-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let (out_path, err_path) = (dir.join("stdout"), dir.join("stderr"));
    let mut child = Command::new(python)
        .arg(script)
        .args(["--network", network, "--repeats", &repeats.to_string()])
        .stdout(std::fs::File::create(&out_path)?)
        .stderr(std::fs::File::create(&err_path)?)
        // Its own process group, so a timeout also ends the two party processes.
        .process_group(0)
        .spawn()
        .with_context(|| format!("starting {} {}", python.display(), script.display()))?;
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if started.elapsed() > CRYPTEN_TIMEOUT {
            // The whole group: the launcher and both CrypTen parties.
            let _ = Command::new("kill")
                .args(["-KILL", &format!("-{}", child.id())])
                .status();
            let _ = child.kill();
            let _ = child.wait();
            bail!("no result within {CRYPTEN_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let (stdout, stderr) = (
        std::fs::read_to_string(&out_path).unwrap_or_default(),
        std::fs::read_to_string(&err_path).unwrap_or_default(),
    );
    let _ = std::fs::remove_dir_all(&dir);
    if !status.success() {
        let tail: Vec<&str> = stderr.lines().rev().take(5).collect();
        bail!(
            "{status}: {}",
            tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
        );
    }
    let last = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .context("it printed no result")?;
    let l: Line = serde_json::from_str(last).context("CrypTen's result line")?;
    Ok(Crypten {
        source: "measured".into(),
        online_bytes: l.online_bytes,
        online_rounds: l.online_rounds,
        online_seconds_median: Some(l.online_seconds_median),
    })
}
