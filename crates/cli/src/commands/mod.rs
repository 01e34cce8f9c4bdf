//! One module per subcommand; shared helpers for models, TLS flags, logging
//! and exit codes.

pub(crate) mod approx;
pub(crate) mod bench;
pub(crate) mod certs;
pub(crate) mod dealer;
pub(crate) mod demo;
pub(crate) mod diagnose;
pub(crate) mod eval;
pub(crate) mod inspect;
pub(crate) mod records;
pub(crate) mod serve;
pub(crate) mod suite;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use cryptmed_engine::{ComparisonKind, EngineConfig, EngineError, Link, Model, Reveal};
use cryptmed_model::Network;
use cryptmed_service::audit::AuditLog;
use cryptmed_service::{Limits, Security, ServiceError, Timeouts};

/// Sets up `tracing` on standard error; `RUST_LOG` overrides the verbosity.
pub(crate) fn init_logging(verbose: u8) {
    let level = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .try_init();
}

/// Exit codes (documented in the README):
/// 0 success; 1 other failure (local I/O such as writing results); 2 usage
/// (including `--resume` on an output of the other format); 3 bad input or
/// model (unreadable or unsupported model, bad record, bad certificate
/// files); 4 network or peer failure (unreachable, TLS, certificate of the
/// wrong role, disconnect, timeout, deadline, malformed frame, refusal,
/// busy); 5 the parties disagree (protocol version, architecture digest,
/// output policy, or dealer).
pub(crate) fn exit_code(e: &anyhow::Error) -> std::process::ExitCode {
    let code = e
        .chain()
        .find_map(|c| {
            if c.downcast_ref::<UsageError>().is_some() {
                return Some(2);
            }
            if let Some(s) = c.downcast_ref::<ServiceError>() {
                return Some(match s {
                    _ if s.is_mismatch() => 5,
                    ServiceError::Config(_) | ServiceError::Input(_) => 3,
                    ServiceError::Engine(
                        EngineError::Unsupported(_)
                        | EngineError::Encoding(_)
                        | EngineError::Record { .. },
                    ) => 3,
                    ServiceError::Io { .. } => 1,
                    _ => 4,
                });
            }
            if c.downcast_ref::<cryptmed_model::onnx::ImportError>()
                .is_some()
                || c.downcast_ref::<cryptmed_input::InputError>().is_some()
            {
                return Some(3);
            }
            match c.downcast_ref::<EngineError>() {
                Some(
                    EngineError::Unsupported(_)
                    | EngineError::Encoding(_)
                    | EngineError::Record { .. },
                ) => Some(3),
                Some(_) => Some(4),
                None => None,
            }
        })
        .unwrap_or(1);
    std::process::ExitCode::from(code)
}

/// A mistake in how the command was called that clap cannot see (exit code 2).
#[derive(Debug)]
pub(crate) struct UsageError(pub(crate) String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// An error and its causes on one line, each cause only if it adds words
/// (a cause whose message is already in the line is dropped).
pub(crate) fn render(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for c in e.chain() {
        let m = c.to_string();
        if line.contains(&m) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&m);
    }
    line
}

/// `--reveal` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum RevealArg {
    /// The class index only (secure argmax).
    Label,
    /// The softmax vector.
    Probabilities,
    /// The raw outputs.
    Logits,
}

impl From<RevealArg> for Reveal {
    fn from(r: RevealArg) -> Self {
        match r {
            RevealArg::Label => Reveal::Label,
            RevealArg::Probabilities => Reveal::Probabilities,
            RevealArg::Logits => Reveal::Logits,
        }
    }
}

/// TLS, timeout and frame flags shared by the three roles.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct NetArgs {
    /// CA certificate (PEM) that signed the other roles' certificates.
    #[arg(
        long,
        value_name = "FILE",
        required_unless_present = "insecure_plaintext"
    )]
    pub(crate) ca: Option<PathBuf>,
    /// This role's certificate (PEM, from `cryptmed certs`: it names the role).
    #[arg(long, value_name = "FILE")]
    pub(crate) cert: Option<PathBuf>,
    /// This role's private key (PEM).
    #[arg(long, value_name = "FILE")]
    pub(crate) key: Option<PathBuf>,
    /// Use plain TCP instead of TLS. For local testing only: everything on the wire is readable.
    #[arg(long)]
    pub(crate) insecure_plaintext: bool,
    /// Seconds before a silent peer (a read or a write that makes no progress) is an error.
    #[arg(long, value_name = "SECONDS", default_value_t = 60.0)]
    pub(crate) timeout: f64,
    /// Seconds to connect and complete TLS to a server.
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0)]
    pub(crate) connect_timeout: f64,
    /// Largest control frame accepted from a peer, in bytes (the public architecture is the largest).
    #[arg(long, value_name = "BYTES", default_value_t = cryptmed_service::wire::DEFAULT_MAX_FRAME)]
    pub(crate) max_frame: usize,
}

/// The help heading of the options a command cannot run without.
pub(crate) const REQUIRED: &str = "Required";

/// A server's arguments, with `--ca`, `--cert` and `--key` required unless
/// `--insecure-plaintext` (a client may go without a certificate).
pub(crate) fn server_required(a: clap::Arg) -> clap::Arg {
    match a.get_id().as_str() {
        "ca" | "cert" | "key" => a
            .required_unless_present("insecure_plaintext")
            .help_heading(REQUIRED),
        _ => a,
    }
}

/// Limits of the two servers (dealer and provider).
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct ServerArgs {
    /// Also serve clients without a certificate (by default every client
    /// must present one signed by the CA). Warns at start.
    #[arg(long)]
    pub(crate) allow_anonymous_clients: bool,
    /// Client certificates are required by default; accepted for older scripts.
    #[arg(long, hide = true, conflicts_with = "allow_anonymous_clients")]
    pub(crate) require_client_cert: bool,
    /// Concurrent sessions (more clients are refused as busy).
    #[arg(long, default_value_t = 64)]
    pub(crate) max_sessions: usize,
    /// Connections allowed to be in their TLS handshake at once (more are closed at once).
    #[arg(long, default_value_t = 128)]
    pub(crate) max_pending: usize,
    /// Seconds an accepted connection has to complete TLS and send its first frame.
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0)]
    pub(crate) handshake_timeout: f64,
    /// Seconds a whole session may last.
    #[arg(long, value_name = "SECONDS", default_value_t = 6.0 * 3600.0)]
    pub(crate) session_deadline: f64,
    /// Largest batch of records a client may ask for.
    #[arg(long, default_value_t = 256)]
    pub(crate) max_batch: usize,
    /// Append one JSON line per session to FILE: time, session tag, peer
    /// certificate subjects, model digest, policy, records, bytes, outcome
    /// (never records, shares, weights or results).
    #[arg(long, value_name = "FILE")]
    pub(crate) audit_log: Option<PathBuf>,
}

impl ServerArgs {
    /// The audit trail, if `--audit-log` was given (opened now, so a bad path stops the server at start).
    pub(crate) fn audit(&self) -> anyhow::Result<Option<std::sync::Arc<AuditLog>>> {
        Ok(match &self.audit_log {
            Some(p) => Some(std::sync::Arc::new(AuditLog::open(p)?)),
            None => None,
        })
    }
}

/// Seconds from a flag, refusing what is not a positive finite number.
pub(crate) fn seconds(flag: &str, v: f64) -> anyhow::Result<Duration> {
    if v.is_finite() && v > 0.0 && v < 1e9 {
        Ok(Duration::from_secs_f64(v))
    } else {
        Err(UsageError(format!(
            "--{flag} must be a positive number of seconds, not {v}"
        ))
        .into())
    }
}

/// A `host:port` address flag, refused (exit 2) without its port.
pub(crate) fn host_port(v: &str) -> Result<String, String> {
    match v.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => Ok(v.to_string()),
        Some((_, port)) if !port.is_empty() && !v.ends_with(']') => {
            Err(format!("`{port}` is not a port number: give host:port"))
        }
        _ => Err("the port is missing: give host:port (for example provider.example:7200)".into()),
    }
}

impl NetArgs {
    /// A client's TLS setup (the CA, and its certificate if given).
    pub(crate) fn security(&self) -> anyhow::Result<Security> {
        self.security_with(false)
    }

    /// A server's TLS setup: client certificates required unless
    /// `--allow-anonymous-clients` (which warns).
    pub(crate) fn server_security(&self, s: &ServerArgs) -> anyhow::Result<Security> {
        if s.allow_anonymous_clients && !self.insecure_plaintext {
            tracing::warn!(
                "INSECURE: --allow-anonymous-clients: clients without a certificate are served"
            );
            eprintln!(
                "warning: --allow-anonymous-clients: clients without a certificate are served; anyone who reaches this port can start sessions"
            );
        }
        self.security_with(!s.allow_anonymous_clients)
    }

    fn security_with(&self, require_client_cert: bool) -> anyhow::Result<Security> {
        if self.insecure_plaintext {
            tracing::warn!(
                "INSECURE: --insecure-plaintext: this link is plain TCP, anyone on the network can read it"
            );
            eprintln!(
                "warning: --insecure-plaintext: plain TCP, no encryption and no authentication (testing only)"
            );
            return Ok(Security::Plaintext);
        }
        let ca = self
            .ca
            .as_deref()
            .context("--ca is required (or --insecure-plaintext for local tests)")?;
        Ok(Security::tls_files(
            ca,
            self.cert.as_deref(),
            self.key.as_deref(),
            require_client_cert,
        )?)
    }

    /// The client-side limits: timeouts and the frame limit.
    pub(crate) fn limits(&self) -> anyhow::Result<Limits> {
        if self.max_frame < 1024 {
            return Err(UsageError(format!(
                "--max-frame {} is too small: frames need at least 1024 bytes",
                self.max_frame
            ))
            .into());
        }
        Ok(Limits {
            timeouts: Timeouts {
                connect: seconds("connect-timeout", self.connect_timeout)?,
                io: seconds("timeout", self.timeout)?,
            },
            max_frame: self.max_frame,
            ..Limits::default()
        })
    }

    /// The server-side limits.
    pub(crate) fn server_limits(&self, s: &ServerArgs) -> anyhow::Result<Limits> {
        if s.max_sessions == 0 || s.max_pending == 0 || s.max_batch == 0 {
            return Err(UsageError(
                "--max-sessions, --max-pending and --max-batch must be at least 1".into(),
            )
            .into());
        }
        Ok(Limits {
            handshake: seconds("handshake-timeout", s.handshake_timeout)?,
            session_deadline: seconds("session-deadline", s.session_deadline)?,
            max_sessions: s.max_sessions,
            max_pending: s.max_pending,
            max_batch: s.max_batch,
            ..self.limits()?
        })
    }
}

/// Imports an ONNX model.
pub(crate) fn load_network(path: &Path) -> anyhow::Result<Network> {
    Ok(cryptmed_model::onnx::load(path)?)
}

/// How the smooth functions and comparisons are evaluated: part of the engine
/// configuration (and of the digest both parties check), so `serve`, `eval`,
/// `inspect`, `demo` and `bench` take the same flags.
#[derive(Debug, Clone, Copy, clap::Args)]
pub(crate) struct SmoothArgs {
    /// Smooth-function tables: accurate (the stated tight bounds) or fast (fewer breakpoints, about ten times looser).
    #[arg(long, value_enum, default_value_t = PrecisionArg::Accurate)]
    pub(crate) precision: PrecisionArg,
    /// How functions with a symmetry (sigmoid, tanh, erf, SiLU, GELU, softplus) are evaluated:
    /// direct (7 rounds) or symmetric (a quarter to a third fewer online bytes, 13 rounds).
    #[arg(long = "smooth", value_enum, default_value_t = SmoothArg::Direct)]
    pub(crate) method: SmoothArg,
    /// Secure comparison (ReLU, pooling, argmax, Clip, smooth pieces): ppa (several rounds each,
    /// little dealer material), fss (one round each, kilobytes of dealer keys per comparison) or
    /// auto (the lower predicted latency on the link given by --rtt and --bandwidth; serve
    /// measures each client's round trip and picks per session).
    #[arg(long, value_enum, default_value_t = ComparisonArg::Ppa)]
    pub(crate) comparison: ComparisonArg,
    #[command(flatten)]
    pub(crate) link: LinkArgs,
}

/// The provider-client link that `--comparison auto` and `inspect`'s WAN
/// prediction assume (as measured by, e.g., `ping` and `iperf3`).
#[derive(Debug, Clone, Copy, clap::Args)]
pub(crate) struct LinkArgs {
    /// Round-trip time between provider and client, milliseconds (`serve --comparison auto`
    /// measures each client's instead, with three pings at the session's start).
    #[arg(long = "rtt", value_name = "MS", default_value_t = 40.0)]
    pub(crate) rtt_ms: f64,
    /// Bandwidth between provider and client, Mbit/s.
    #[arg(long = "bandwidth", value_name = "MBIT", default_value_t = 100.0)]
    pub(crate) mbit: f64,
}

impl LinkArgs {
    /// The link, refusing values that are not positive numbers.
    pub(crate) fn link(&self) -> anyhow::Result<Link> {
        if !(self.rtt_ms >= 0.0 && self.rtt_ms.is_finite()) {
            return Err(UsageError(format!(
                "--rtt {}: give milliseconds, 0 or more",
                self.rtt_ms
            ))
            .into());
        }
        if !(self.mbit > 0.0 && self.mbit.is_finite()) {
            return Err(UsageError(format!(
                "--bandwidth {}: give Mbit/s, more than 0",
                self.mbit
            ))
            .into());
        }
        Ok(Link {
            rtt: self.rtt_ms * 1e-3,
            bandwidth: self.mbit * 1e6,
        })
    }
}

/// `--comparison` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ComparisonArg {
    /// Parallel-prefix comparison.
    Ppa,
    /// Function secret sharing (distributed comparison functions).
    Fss,
    /// The lower predicted latency on the given link.
    Auto,
}

impl SmoothArgs {
    /// The engine configuration with output policy `reveal`.
    pub(crate) fn config(&self, reveal: Reveal) -> EngineConfig {
        EngineConfig {
            reveal,
            precision: self.precision.into(),
            smooth: self.method.into(),
            ..EngineConfig::default()
        }
    }
}

/// `--smooth` values.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum SmoothArg {
    /// One opening for every breakpoint of the full table.
    Direct,
    /// The sign, then a half table on |x|.
    Symmetric,
}

impl From<SmoothArg> for cryptmed_engine::SmoothMethod {
    fn from(m: SmoothArg) -> Self {
        match m {
            SmoothArg::Direct => cryptmed_engine::SmoothMethod::Direct,
            SmoothArg::Symmetric => cryptmed_engine::SmoothMethod::Symmetric,
        }
    }
}

/// `--precision` values.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum PrecisionArg {
    /// The stated tight bounds.
    Accurate,
    /// Fewer breakpoints, about ten times looser.
    Fast,
}

impl From<PrecisionArg> for cryptmed_approx::Precision {
    fn from(p: PrecisionArg) -> Self {
        match p {
            PrecisionArg::Accurate => cryptmed_approx::Precision::Accurate,
            PrecisionArg::Fast => cryptmed_approx::Precision::Fast,
        }
    }
}

/// Compiles a network for the engine, with the comparison backend
/// `--comparison` names (for `auto`, the one [`ComparisonKind::choose`]
/// predicts faster on the `--rtt`/`--bandwidth` link).
pub(crate) fn compile(net: Network, reveal: Reveal, smooth: &SmoothArgs) -> anyhow::Result<Model> {
    let model = Model::compile(net, smooth.config(reveal))?;
    let kind = match smooth.comparison {
        ComparisonArg::Ppa => ComparisonKind::Ppa,
        ComparisonArg::Fss => ComparisonKind::Fss,
        ComparisonArg::Auto => {
            let link = smooth.link.link()?;
            let kind = ComparisonKind::choose(&model, link);
            tracing::info!(
                rtt_ms = smooth.link.rtt_ms,
                mbit = smooth.link.mbit,
                comparison = kind.name(),
                "comparison chosen by predicted latency"
            );
            kind
        }
    };
    Ok(model.with_comparison(kind))
}

/// Loads the records of `path` for `net` in one go (columns by name, the
/// declared image preprocessing, plausibility refused), for the benchmark
/// suite's data.
pub(crate) fn load_records(
    path: &Path,
    net: &Network,
    labelled: bool,
) -> anyhow::Result<cryptmed_input::Records> {
    Ok(records::RecordArgs::default()
        .load(path, net, labelled)?
        .records)
}

/// The loader's message for a record the engine refused
/// ([`EngineError::Record`]): the file, the line (CSV), the record and the
/// column, as every other refusal reads. `first` is the file's index of the
/// engine's record 0 (a resumed session starts later in the file).
pub(crate) fn record_error(
    file: &str,
    records: &cryptmed_input::Records,
    first: usize,
    e: &EngineError,
) -> Option<cryptmed_input::InputError> {
    match e {
        EngineError::Record {
            record,
            column,
            reason,
        } => Some(records.value_error(file, first + record, *column, reason.clone())),
        _ => None,
    }
}

/// Checks records against a compiled model (its per-column input limits,
/// see [`Model::input_limits`]) before running them, so that a refusal
/// names the file, the line and the column.
pub(crate) fn check_records(
    file: &str,
    records: &cryptmed_input::Records,
    model: &Model,
) -> anyhow::Result<()> {
    model.check_records(&records.records).map_err(|e| {
        record_error(file, records, 0, &e).map_or_else(|| anyhow::Error::new(e), Into::into)
    })
}

/// A per-layer progress bar for long inferences (one bar per batch,
/// refilled at every batch), on a terminal only; `None` elsewhere, so
/// piped output and logs stay clean.
/// One line on how far secure results are from the `f64` reference.
pub(crate) fn fidelity_line(f: &cryptmed_engine::Fidelity) -> String {
    let mut parts = Vec::new();
    if let (Some(max), Some(mean)) = (f.max_abs_logit_error, f.mean_abs_logit_error) {
        parts.push(format!(
            "secure logits within {max:.2e} of f64 (mean {mean:.2e})"
        ));
    }
    if let (Some(p), Some(s)) = (f.max_abs_probability_error, f.max_probability_sum_error) {
        parts.push(format!(
            "probabilities within {p:.2e} of the f64 softmax (sums within {s:.2e} of 1)"
        ));
    }
    parts.push(format!(
        "fixed-point twin within {:.2e}",
        f.fixed_point_max_abs_logit_error
    ));
    format!("fidelity over {} records: {}", f.records, parts.join("; "))
}

pub(crate) fn layer_progress() -> Option<cryptmed_engine::ProgressFn> {
    if !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        return None;
    }
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} layer {pos}/{len} {msg} {elapsed}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    Some(std::sync::Arc::new(
        move |p: &cryptmed_engine::Progress<'_>| {
            if p.done == 1 {
                bar.reset();
                bar.set_length(p.total as u64);
            }
            bar.set_position(p.done as u64);
            bar.set_message(p.step.to_string());
            if p.done == p.total {
                bar.finish_and_clear();
            }
        },
    ))
}

/// Peak resident memory (`VmHWM` in `/proc/PID/status`) of process `pid`, or
/// of this process for `None`, in bytes; `None` where `/proc` cannot tell.
pub(crate) fn peak_rss(pid: Option<u32>) -> Option<u64> {
    let path = match pid {
        Some(p) => format!("/proc/{p}/status"),
        None => "/proc/self/status".to_string(),
    };
    let status = std::fs::read_to_string(path).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}
